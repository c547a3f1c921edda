"""What every cookie-signed-in web surface shares: session tokens, CSRF checks, login limits.

The console (operators) and the customer portal (customers) keep their own session tables
and cookies, and both use these pieces: a cookie holds a random token and the database
only its hash; every non-GET request carries the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`); a login form is protected by a double-submit
cookie; failed logins are rate limited per address, per account and per process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque

from starlette.requests import Request

__all__ = [
    "DUMMY_HASH",
    "LoginLimiter",
    "csrf_matches",
    "csrf_value",
    "new_token",
    "safe_next",
    "token_hash",
]

# Hashing a password for an unknown email too keeps response times alike.
DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def new_token(nbytes: int = 32) -> str:
    """A fresh random URL-safe token (session, CSRF, email link)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """What is stored for a token: its SHA-256 (tokens carry 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_matches(given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected token never matches."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def csrf_value(request: Request) -> str:
    """The CSRF token a request carries: header `X-CSRF-Token`, else form field `csrf_token`."""
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


def safe_next(target: str, prefix: str) -> str:
    """`target` if it is a path inside `prefix` (no open redirect), else `prefix + "/"`."""
    ok = target.startswith(prefix + "/") and "//" not in target and "\\" not in target
    return target if ok else prefix + "/"


class LoginLimiter:
    """At most `limit` failed logins per client address and per account (email) within
    `window_s`, and at most `process_limit` in this process altogether (a spread-out
    guessing run then slows every login here, not just one address or account)."""

    PROCESS = "process"

    def __init__(
        self, limit: int = 10, window_s: float = 300.0, *, process_limit: int = 200
    ) -> None:
        self.limit = limit
        self.process_limit = process_limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        hits = self._failures.setdefault(key, deque())
        while hits and hits[0] < time.monotonic() - self.window_s:
            hits.popleft()
        return hits

    def blocked(self, *keys: str) -> bool:
        if len(self._recent(self.PROCESS)) >= self.process_limit:
            return True
        return any(len(self._recent(k)) >= self.limit for k in keys)

    def fail(self, *keys: str) -> None:
        if len(self._failures) > 50_000:
            self._failures = {self.PROCESS: self._recent(self.PROCESS)}
        for key in (*keys, self.PROCESS):
            self._recent(key).append(time.monotonic())
