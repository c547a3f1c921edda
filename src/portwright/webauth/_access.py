"""Short-lived access tokens for the API: JWTs (HS256) signed with a key derived from the
vault's master key, so every gateway process of one installation accepts them.

A token names a customer user (`sub`), their tenant (`tid`) and role; it expires after
`ttl_s` (15 minutes by default) and is refused after that, or when its signature,
issuer, audience or type is wrong.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

__all__ = ["ACCESS_TTL_S", "AccessClaims", "AccessTokens"]

ACCESS_TTL_S = 900.0
ISSUER = "portwright"
AUDIENCE = "portwright-api"
TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a valid access token says."""

    user_id: str
    tenant_id: str
    role: str
    expires_at: float


class AccessTokens:
    """Issues and checks access tokens with one signing key (32+ bytes)."""

    def __init__(self, key: bytes, *, ttl_s: float = ACCESS_TTL_S) -> None:
        if len(key) < 32:
            raise ValueError("an access-token signing key needs at least 32 bytes")
        self._key = key
        self.ttl_s = ttl_s

    def issue(self, *, user_id: str, tenant_id: str, role: str, now: float | None = None) -> str:
        issued = time.time() if now is None else now
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "typ": TOKEN_TYPE,
            "sub": user_id,
            "tid": tenant_id,
            "role": role,
            "iat": int(issued),
            "exp": int(issued + self.ttl_s),
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str) -> AccessClaims | None:
        """The claims of a valid, unexpired token; None for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "tid", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        sub, tid, role = claims.get("sub"), claims.get("tid"), claims.get("role")
        if claims.get("typ") != TOKEN_TYPE or not all(
            isinstance(v, str) and v for v in (sub, tid, role)
        ):
            return None
        return AccessClaims(str(sub), str(tid), str(role), float(claims["exp"]))

    @staticmethod
    def looks_like(token: str) -> bool:
        """A JWT's shape (three dot-separated parts), cheap to check before verifying."""
        return token.count(".") == 2 and token.startswith("eyJ")
