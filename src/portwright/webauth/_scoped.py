"""Tokens that let one named subject of a tenant do one narrow thing, and nothing else:
e.g. a dispatch driver's app opening its own WebSocket without holding the tenant's API key.

A scoped token is a JWT (HS256) whose type and audience are its *purpose*, so a token made
for one purpose is refused for any other — by this class and by the API's access-token
check alike. It names the tenant (`tid`), the subject (`sub`) and an *epoch*: the issuer
keeps the subject's current epoch and bumps it to revoke every token issued before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = ["ScopedClaims", "ScopedTokens", "app_key"]

ISSUER = "portwright"
_PURPOSE = re.compile(r"^[a-z][a-z0-9-]{1,40}$")


@dataclass(frozen=True, slots=True)
class ScopedClaims:
    """What a valid scoped token says."""

    tenant_id: str
    subject: str
    epoch: int
    expires_at: float


class ScopedTokens:
    """Issues and checks the tokens of one purpose, with one signing key (32+ bytes)."""

    def __init__(self, key: bytes, purpose: str, *, ttl_s: float, max_ttl_s: float) -> None:
        if len(key) < 32:
            raise ValueError("a scoped-token signing key needs at least 32 bytes")
        if not _PURPOSE.match(purpose) or purpose == "access":
            raise ValueError(f"bad token purpose {purpose!r}")
        if not 0 < ttl_s <= max_ttl_s:
            raise ValueError("ttl_s must be positive and at most max_ttl_s")
        self._key = key
        self.purpose = purpose
        self.ttl_s = ttl_s
        self.max_ttl_s = max_ttl_s

    @property
    def audience(self) -> str:
        return f"portwright-{self.purpose}"

    def issue(
        self,
        *,
        tenant_id: str,
        subject: str,
        epoch: int,
        ttl_s: float | None = None,
        now: float | None = None,
    ) -> tuple[str, float]:
        """A token and when it expires (epoch seconds)."""
        life = self.ttl_s if ttl_s is None else ttl_s
        if not 0 < life <= self.max_ttl_s:
            raise ValueError(f"ttl_s must be between 1 and {int(self.max_ttl_s)}")
        issued = time.time() if now is None else now
        expires = int(issued + life)
        claims = {
            "iss": ISSUER,
            "aud": self.audience,
            "typ": self.purpose,
            "sub": subject,
            "tid": tenant_id,
            "epo": epoch,
            "iat": int(issued),
            "exp": expires,
        }
        return jwt.encode(claims, self._key, algorithm="HS256"), float(expires)

    def verify(self, token: str, *, now: float | None = None) -> ScopedClaims | None:
        """The claims of a valid, unexpired token of this purpose; None for anything else.
        (The caller still compares `epoch` with the subject's current one.)"""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=self.audience,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "tid", "iss", "aud"], "verify_exp": now is None},
            )
        except jwt.PyJWTError:
            return None
        sub, tid, epoch, exp = (
            claims.get("sub"),
            claims.get("tid"),
            claims.get("epo"),
            claims["exp"],
        )
        if claims.get("typ") != self.purpose or not (
            isinstance(sub, str) and sub and isinstance(tid, str) and tid
        ):
            return None
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            return None
        if not isinstance(exp, int | float) or (now is not None and now >= exp):
            return None
        return ScopedClaims(tid, sub, epoch, float(exp))


def app_key(app: Any, purpose: str) -> bytes:
    """32 bytes for `purpose`, derived from the installation's master key, for an app's
    routes mounted on the gateway (`portwright.routers`): the gateway puts the vault's key
    derivation on `app.state.derived_key` before it mounts them."""
    derive: Callable[[str], bytes] | None = getattr(app.state, "derived_key", None)
    if derive is None:
        raise RuntimeError("no key derivation on this app: mount routers through create_app")
    return derive(purpose)
