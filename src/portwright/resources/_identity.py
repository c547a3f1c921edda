"""Identity and secrets seams the orchestrator calls; the proxy pool and vault fill them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from portwright.sdk import PermanentError

__all__ = [
    "BlobSealer",
    "DirectIdentity",
    "IdentityProvider",
    "SecretsProvider",
    "StaticSecrets",
]


class IdentityProvider(Protocol):
    """Which network identity (proxy URL) a job uses, and rotation when one is blocked."""

    def proxy_for(self, job_id: str, portal: str) -> str | None: ...

    def rotate(self, job_id: str, portal: str, reason: str) -> bool:
        """Burn the job's current identity and move to another; False when none is left."""
        ...


class DirectIdentity:
    """No proxies: every job connects directly; rotation is impossible."""

    def proxy_for(self, job_id: str, portal: str) -> str | None:
        return None

    def rotate(self, job_id: str, portal: str, reason: str) -> bool:
        return False


class SecretsProvider(Protocol):
    """Credentials by (tenant, name), decrypted only when a step asks."""

    def get(self, tenant_id: str, name: str) -> str: ...


@runtime_checkable
class BlobSealer(Protocol):
    """Encrypts what a job leaves in the blob store between steps (a browser's cookies and
    local storage) under the tenant's key; `context` (the blob's key) is bound to it, so a
    sealed blob cannot be passed off as another. The vault is one."""

    def seal_blob(self, tenant_id: str, data: bytes, *, context: str) -> bytes: ...

    def open_blob(self, tenant_id: str, sealed: bytes, *, context: str) -> bytes: ...


class StaticSecrets:
    """Secrets from a mapping keyed by name (any tenant). For demos and tests."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get(self, tenant_id: str, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise PermanentError(f"no credential named {name!r} is stored") from None
