"""API keys and tenant plans: the rows the gateway authenticates and meters against."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from portwright._ids import new_id
from portwright.store._records import TenantRecord
from portwright.store._rows import to_record, to_records
from portwright.store._schema import api_keys, tenants
from portwright.store._scope import tenant_transaction

__all__ = ["AccountRepository", "ApiKeyRecord"]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One API key: its public prefix, the hash of its secret, its tenant and scopes."""

    id: str
    tenant_id: str
    prefix: str
    secret_hash: str
    name: str
    scopes: str
    created_at: float
    revoked_at: float | None
    plan: str = "starter"

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split() if s)


class AccountRepository:
    """Every query on api_keys, plus the tenant lookups and plan changes the gateway needs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create_key(
        self, *, tenant_id: str, prefix: str, secret_hash: str, name: str, scopes: str
    ) -> ApiKeyRecord:
        values = {
            "id": new_id("key"),
            "tenant_id": tenant_id,
            "prefix": prefix,
            "secret_hash": secret_hash,
            "name": name,
            "scopes": scopes,
            "created_at": time.time(),
        }
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(**values))
        found = self.key_by_prefix(prefix)
        assert found is not None
        return found

    def key_by_prefix(self, prefix: str) -> ApiKeyRecord | None:
        """The key with this public prefix, with its tenant's plan; None if there is none."""
        query = (
            sa.select(api_keys, tenants.c.plan)
            .join(tenants, tenants.c.id == api_keys.c.tenant_id)
            .where(api_keys.c.prefix == prefix)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(ApiKeyRecord, row)

    def keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        query = (
            sa.select(api_keys, tenants.c.plan)
            .join(tenants, tenants.c.id == api_keys.c.tenant_id)
            .where(api_keys.c.tenant_id == tenant_id)
            .order_by(api_keys.c.created_at)
        )
        with tenant_transaction(self.engine, tenant_id) as conn:
            return to_records(ApiKeyRecord, conn.execute(query))

    def revoke(self, prefix: str) -> bool:
        """Revoke the key with this prefix; False if there is none or it was revoked already."""
        with self.engine.begin() as conn:
            result = conn.execute(
                api_keys.update()
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return result.rowcount == 1

    def tenant_by_name(self, name: str) -> TenantRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.name == name)).first()
        return None if row is None else to_record(TenantRecord, row)

    def set_plan(self, tenant_id: str, plan: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                tenants.update().where(tenants.c.id == tenant_id).values(plan=plan)
            )
        if result.rowcount != 1:
            raise LookupError(f"no tenant {tenant_id}")
