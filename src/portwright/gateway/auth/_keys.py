"""API keys: `pw_<prefix>_<secret>`. The prefix is public and unique; only a hash of the
secret is stored. Secrets are 256 random bits, so a fast hash (SHA-256) is the right one."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from portwright.store import ApiKeyRecord, Store

__all__ = ["IssuedKey", "hash_secret", "issue_key", "parse_key", "verify_secret"]

KEY_PREFIX = "pw_"
PREFIX_LEN = 12


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly created key: its record and the full key, shown exactly once."""

    record: ApiKeyRecord
    key: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, secret_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret), secret_hash)


def parse_key(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    rest = key[len(KEY_PREFIX) :]
    prefix, sep, secret = (
        rest[:PREFIX_LEN],
        rest[PREFIX_LEN : PREFIX_LEN + 1],
        rest[PREFIX_LEN + 1 :],
    )
    if sep != "_" or len(prefix) != PREFIX_LEN or not secret:
        return None
    return prefix, secret


def issue_key(
    store: Store,
    *,
    tenant: str,
    name: str = "",
    scopes: str = "jobs",
    plan: str | None = None,
) -> IssuedKey:
    """Create a key for tenant `tenant` (created if missing; `plan` applied when given)."""
    record = store.tenants.ensure(tenant, plan=plan or "starter")
    if plan is not None and record.plan != plan:
        store.accounts.set_plan(record.id, plan)
    prefix = secrets.token_hex(PREFIX_LEN // 2)
    secret = secrets.token_urlsafe(32)
    key = store.accounts.create_key(
        tenant_id=record.id,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        name=name,
        scopes=scopes,
    )
    return IssuedKey(key, f"{KEY_PREFIX}{prefix}_{secret}")
