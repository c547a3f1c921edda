"""Ciphertexts of the credential vault: wrapped data keys and encrypted credentials.

This module stores and returns opaque bytes only; encryption and decryption
happen in `portwright.resources.vault`, never here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._rows import to_record, to_records
from portwright.store._schema import credentials, vault_keys
from portwright.store._scope import tenant_transaction

__all__ = ["CredentialRecord", "DataKeyRecord", "VaultRepository"]


@dataclass(frozen=True, slots=True)
class DataKeyRecord:
    tenant_id: str
    version: int
    master_kid: str
    wrapped: bytes
    active: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    tenant_id: str
    name: str
    key_version: int
    ciphertext: bytes
    revision: int
    created_at: float
    updated_at: float


class VaultRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- data keys -----------------------------------------------------------------------

    def data_keys(self, tenant_id: str | None = None) -> list[DataKeyRecord]:
        query = sa.select(vault_keys).order_by(vault_keys.c.tenant_id, vault_keys.c.version)
        if tenant_id is not None:
            query = query.where(vault_keys.c.tenant_id == tenant_id)
        with self.engine.connect() as conn:
            return to_records(DataKeyRecord, conn.execute(query))

    def add_data_key(self, tenant_id: str, *, master_kid: str, wrapped: bytes) -> DataKeyRecord:
        """A new active data key version for the tenant; earlier ones stay for decryption."""
        where = vault_keys.c.tenant_id == tenant_id
        for _ in range(5):
            try:
                with self.engine.begin() as conn:
                    current = conn.execute(
                        sa.select(sa.func.max(vault_keys.c.version)).where(where)
                    )
                    version = int(current.scalar() or 0) + 1
                    conn.execute(vault_keys.update().where(where).values(active=False))
                    conn.execute(
                        vault_keys.insert().values(
                            tenant_id=tenant_id,
                            version=version,
                            master_kid=master_kid,
                            wrapped=wrapped,
                            active=True,
                            created_at=time.time(),
                        )
                    )
            except sa.exc.IntegrityError:
                continue  # another process added a version at the same time
            return next(k for k in self.data_keys(tenant_id) if k.version == version)
        raise RuntimeError(f"could not add a data key for tenant {tenant_id}")

    def rewrap(self, tenant_id: str, version: int, *, master_kid: str, wrapped: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                vault_keys.update()
                .where(vault_keys.c.tenant_id == tenant_id, vault_keys.c.version == version)
                .values(master_kid=master_kid, wrapped=wrapped)
            )

    # -- credentials ---------------------------------------------------------------------

    def put(self, tenant_id: str, name: str, *, key_version: int, ciphertext: bytes) -> None:
        """Store or replace a credential's ciphertext."""
        now = time.time()
        key = (credentials.c.tenant_id == tenant_id) & (credentials.c.name == name)
        for _ in range(3):
            with self.engine.begin() as conn:
                updated = conn.execute(
                    credentials.update()
                    .where(key)
                    .values(
                        key_version=key_version,
                        ciphertext=ciphertext,
                        revision=credentials.c.revision + 1,
                        updated_at=now,
                    )
                )
            if updated.rowcount == 1:
                return
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        credentials.insert().values(
                            tenant_id=tenant_id,
                            name=name,
                            key_version=key_version,
                            ciphertext=ciphertext,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            except sa.exc.IntegrityError:
                continue
            return

    def get(self, tenant_id: str, name: str) -> CredentialRecord | None:
        with tenant_transaction(self.engine, tenant_id) as conn:
            row = conn.execute(
                sa.select(credentials).where(
                    credentials.c.tenant_id == tenant_id, credentials.c.name == name
                )
            ).first()
        return None if row is None else to_record(CredentialRecord, row)

    def list(self, tenant_id: str) -> list[CredentialRecord]:
        query = (
            sa.select(credentials)
            .where(credentials.c.tenant_id == tenant_id)
            .order_by(credentials.c.name)
        )
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(CredentialRecord, conn.execute(query))

    def delete(self, tenant_id: str, name: str) -> bool:
        with tenant_transaction(self.engine, tenant_id) as conn:
            result = conn.execute(
                credentials.delete().where(
                    credentials.c.tenant_id == tenant_id, credentials.c.name == name
                )
            )
        return result.rowcount == 1
