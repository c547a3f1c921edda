"""The credential vault: per-tenant data keys wrapped by a master key, credentials sealed
by the data key. Implements `portwright.resources.SecretsProvider`.

Values are decrypted only by `get` (called from inside the adapter step that
needs them) and never logged; the API stores and replaces them but never
returns them. Rotation: `rotate_master()` re-wraps every data key under the
current master key (older keys stay configured in `previous_master_keys`
until it has run); `rotate_data_key(tenant)` gives a tenant a new data key and
re-seals its credentials with it.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portwright.resources.vault._crypto import MasterKey, VaultCryptoError, open_sealed, seal
from portwright.sdk import PermanentError
from portwright.settings import Settings
from portwright.store import CredentialRecord, Store

__all__ = ["Vault"]

log = structlog.get_logger("portwright.vault")
MASTER_KEY_FILE = "master.key"


def _data_key_aad(tenant_id: str, version: int) -> bytes:
    return f"portwright-dk|{tenant_id}|{version}".encode()


def _credential_aad(tenant_id: str, name: str, version: int) -> bytes:
    return f"portwright-cred|{tenant_id}|{name}|{version}".encode()


def _blob_aad(tenant_id: str, context: str, version: int) -> bytes:
    return f"portwright-blob|{tenant_id}|{context}|{version}".encode()


SEALED_BLOB = b"pwseal1:"  # then the data key version (4 bytes, big-endian), then the box
SEALED_TEXT = "pwsec1:"  # then a sealed blob, urlsafe base64: fits a text or JSON column


class Vault:
    """Stores, replaces and decrypts per-tenant credentials (envelope encryption)."""

    def __init__(
        self,
        master: MasterKey,
        *,
        previous: tuple[MasterKey, ...] = (),
        store: Store | None = None,
        database_url: str | None = None,
    ) -> None:
        if store is None and database_url is None:
            raise ValueError("Vault needs a store or a database_url")
        self.master = master
        self._masters: dict[str, bytes] = {}
        for key in (master, *previous):  # each key's legacy derivation stays readable
            for kid, raw in key.readable.items():
                self._masters.setdefault(kid, raw)
        self._store = store
        self._own_store = store is None
        self._database_url = database_url
        self._data_keys: dict[tuple[str, int], bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, store: Store | None = None) -> Vault:
        """The vault for these settings: master key from `master_key`, else from
        `<data_dir>/master.key` (created on first use, mode 0600)."""
        if settings.master_key is not None:
            master = MasterKey(settings.master_key.get_secret_value())
        else:
            path = settings.data_dir / MASTER_KEY_FILE
            master = MasterKey(_local_master_key(settings.data_dir), setting=str(path))
        previous = tuple(
            MasterKey(k.get_secret_value(), setting="PORTWRIGHT_PREVIOUS_MASTER_KEYS",
                      allow_short=True)
            for k in settings.previous_master_keys
        )  # fmt: skip
        return cls(master, previous=previous, store=store, database_url=settings.app_database_url)

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                assert self._database_url is not None
                self._store = Store.open(self._database_url, pool_size=2)
            return self._store

    def derived_key(self, purpose: str) -> bytes:
        """32 bytes for `purpose` (e.g. signing access tokens), derived from the current
        master key with HKDF: every process with the same master key derives the same."""
        hkdf = HKDF(algorithm=SHA256(), length=32, salt=b"portwright-derived",
                    info=f"portwright:{purpose}".encode())  # fmt: skip
        return hkdf.derive(self.master.key)

    def close(self) -> None:
        with self._lock:
            if self._own_store and self._store is not None:
                self._store.close()
                self._store = None

    # -- data keys -----------------------------------------------------------------------

    def _unwrap(self, tenant_id: str, version: int, kid: str, wrapped: bytes) -> bytes:
        master = self._masters.get(kid)
        if master is None:
            raise VaultCryptoError(
                f"data key {version} of tenant {tenant_id} is wrapped by master key {kid}, "
                "which is not configured (master_key / previous_master_keys)"
            )
        return open_sealed(master, wrapped, _data_key_aad(tenant_id, version))

    def _data_key(self, tenant_id: str, version: int | None = None) -> tuple[int, bytes]:
        """(version, key): the given version, or the active one (created on first use)."""
        if version is not None:
            cached = self._data_keys.get((tenant_id, version))
            if cached is not None:
                return version, cached
        rows = self.store.vault.data_keys(tenant_id)
        if version is None:
            active = [r for r in rows if r.active]
            if not active:
                return self.rotate_data_key(tenant_id, reseal=False)
            row = active[-1]
        else:
            found = [r for r in rows if r.version == version]
            if not found:
                raise VaultCryptoError(f"tenant {tenant_id} has no data key version {version}")
            row = found[0]
        key = self._unwrap(tenant_id, row.version, row.master_kid, row.wrapped)
        self._data_keys[(tenant_id, row.version)] = key
        return row.version, key

    def rotate_data_key(self, tenant_id: str, *, reseal: bool = True) -> tuple[int, bytes]:
        """A new data key for the tenant; with `reseal`, its credentials move to it."""
        key = os.urandom(32)
        versions = [r.version for r in self.store.vault.data_keys(tenant_id)]
        version = max(versions, default=0) + 1
        wrapped = seal(self.master.key, key, _data_key_aad(tenant_id, version))
        row = self.store.vault.add_data_key(tenant_id, master_kid=self.master.kid, wrapped=wrapped)
        if row.version != version:  # a concurrent rotation took that number: wrap again
            wrapped = seal(self.master.key, key, _data_key_aad(tenant_id, row.version))
            self.store.vault.rewrap(
                tenant_id, row.version, master_kid=self.master.kid, wrapped=wrapped
            )
        self._data_keys[(tenant_id, row.version)] = key
        if reseal:
            for record in self.store.vault.list(tenant_id):
                self._put(tenant_id, record.name, self._decrypt(record), (row.version, key))
        return row.version, key

    def rotate_master(self, tenant_id: str | None = None) -> int:
        """Re-wrap every data key (or one tenant's) under the current master key; returns
        how many moved. A key wrapped by an unconfigured master key raises VaultCryptoError."""
        moved = 0
        for row in self.store.vault.data_keys(tenant_id):
            if row.master_kid == self.master.kid:
                continue
            key = self._unwrap(row.tenant_id, row.version, row.master_kid, row.wrapped)
            wrapped = seal(self.master.key, key, _data_key_aad(row.tenant_id, row.version))
            self.store.vault.rewrap(
                row.tenant_id, row.version, master_kid=self.master.kid, wrapped=wrapped
            )
            moved += 1
        log.info("vault master key rotated", data_keys=moved, kid=self.master.kid)
        return moved

    # -- credentials ---------------------------------------------------------------------

    def _put(self, tenant_id: str, name: str, value: str, data_key: tuple[int, bytes]) -> None:
        version, key = data_key
        sealed = seal(key, value.encode(), _credential_aad(tenant_id, name, version))
        self.store.vault.put(tenant_id, name, key_version=version, ciphertext=sealed)

    def _decrypt(self, record: CredentialRecord) -> str:
        version, key = self._data_key(record.tenant_id, record.key_version)
        aad = _credential_aad(record.tenant_id, record.name, version)
        return open_sealed(key, record.ciphertext, aad).decode()

    def put(self, tenant_id: str, name: str, value: str) -> CredentialRecord:
        """Store or replace credential `name` of the tenant; returns its metadata row."""
        self._put(tenant_id, name, value, self._data_key(tenant_id))
        record = self.store.vault.get(tenant_id, name)
        assert record is not None
        return record

    def get(self, tenant_id: str, name: str) -> str:
        """The decrypted credential (SecretsProvider). PermanentError if none is stored."""
        record = self.store.vault.get(tenant_id, name)
        if record is None:
            raise PermanentError(f"no credential named {name!r} is stored for this tenant")
        return self._decrypt(record)

    def reveal(self, tenant_id: str, name: str) -> tuple[CredentialRecord, str]:
        """The credential's metadata row and its plaintext, for an audited console open.
        LookupError if none is stored. The caller writes the audit row, never the value."""
        record = self.store.vault.get(tenant_id, name)
        if record is None:
            raise LookupError(f"no credential named {name!r} is stored for tenant {tenant_id}")
        return record, self._decrypt(record)

    def list(self, tenant_id: str) -> list[CredentialRecord]:
        return self.store.vault.list(tenant_id)

    # -- blobs (BlobSealer) -------------------------------------------------------------

    def seal_blob(self, tenant_id: str, data: bytes, *, context: str) -> bytes:
        """`data` sealed under the tenant's active data key, bound to `context`."""
        version, key = self._data_key(tenant_id)
        box = seal(key, data, _blob_aad(tenant_id, context, version))
        return SEALED_BLOB + version.to_bytes(4, "big") + box

    def open_blob(self, tenant_id: str, sealed: bytes, *, context: str) -> bytes:
        """What `seal_blob` sealed (with whichever data key version it names);
        VaultCryptoError if it is not a sealed blob, or not this tenant's and context's."""
        if not sealed.startswith(SEALED_BLOB) or len(sealed) < len(SEALED_BLOB) + 4:
            raise VaultCryptoError("not a sealed blob")
        head = len(SEALED_BLOB)
        version = int.from_bytes(sealed[head : head + 4], "big")
        _, key = self._data_key(tenant_id, version)
        return open_sealed(key, sealed[head + 4 :], _blob_aad(tenant_id, context, version))

    # -- short secrets kept in other tables (SecretSealer) ------------------------------

    def seal_secret(self, tenant_id: str, value: str, *, context: str) -> str:
        """`value` sealed for (tenant, context) as text: `pwsec1:` + urlsafe base64."""
        blob = self.seal_blob(tenant_id, value.encode(), context=context)
        return SEALED_TEXT + base64.urlsafe_b64encode(blob).decode()

    def open_secret(self, tenant_id: str, sealed: str, *, context: str) -> str:
        """What `seal_secret` sealed; VaultCryptoError for anything else or elsewhere's."""
        if not sealed.startswith(SEALED_TEXT):
            raise VaultCryptoError("not a sealed secret")
        try:
            blob = base64.urlsafe_b64decode(sealed[len(SEALED_TEXT) :])
        except (binascii.Error, ValueError):
            raise VaultCryptoError("not a sealed secret (bad base64)") from None
        return self.open_blob(tenant_id, blob, context=context).decode()

    def delete(self, tenant_id: str, name: str) -> bool:
        return self.store.vault.delete(tenant_id, name)


def _local_master_key(data_dir: Path) -> str:
    path = data_dir / MASTER_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = MasterKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    log.warning("generated a local vault master key; set PORTWRIGHT_MASTER_KEY in production")
    return key
