"""Identity and secrets seams the orchestrator calls; the proxy pool and vault fill them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from portwright.sdk import PermanentError

__all__ = ["DirectIdentity", "IdentityProvider", "SecretsProvider", "StaticSecrets"]


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


class StaticSecrets:
    """Secrets from a mapping keyed by name (any tenant). For demos and tests."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get(self, tenant_id: str, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise PermanentError(f"no credential named {name!r} is stored") from None
