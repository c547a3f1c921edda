"""Web authentication shared by the operator console, the customer portal and the API.

- `hash_password` / `verify_password`: scrypt, self-describing hashes.
- `token_hash`, `new_token`, `csrf_value`, `csrf_matches`, `safe_next`, `LoginLimiter`:
  the session-cookie and CSRF rules every server-rendered surface follows.
- `AccessTokens`: short-lived JWT access tokens the gateway accepts beside API keys.
- `ScopedTokens`: narrow tokens for one purpose and subject (a dispatch driver's socket),
  revocable by epoch.
- `change_stream`: the server-sent `change` events live pages re-fetch their region on.
"""

from portwright.webauth._access import ACCESS_TTL_S, AccessClaims, AccessTokens
from portwright.webauth._live import change_stream
from portwright.webauth._passwords import hash_password, verify_password
from portwright.webauth._scoped import ScopedClaims, ScopedTokens, app_key
from portwright.webauth._sessions import (
    DUMMY_HASH,
    LoginLimiter,
    csrf_matches,
    csrf_value,
    new_token,
    safe_next,
    token_hash,
)

__all__ = [
    "ACCESS_TTL_S",
    "DUMMY_HASH",
    "AccessClaims",
    "AccessTokens",
    "LoginLimiter",
    "ScopedClaims",
    "ScopedTokens",
    "app_key",
    "change_stream",
    "csrf_matches",
    "csrf_value",
    "hash_password",
    "new_token",
    "safe_next",
    "token_hash",
    "verify_password",
]
