"""Authentication as pure ASGI middleware: a valid key puts a `Principal` on the scope.

Failures are rate limited per client address, so guessing keys gets a 429
long before it gets anywhere; once the address is over its budget even a
correct key is refused until the window passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from portwright.gateway._errors import error_response
from portwright.gateway._principal import Principal
from portwright.gateway.auth._keys import parse_key, verify_secret
from portwright.gateway.ratelimit import RateLimiter, rate_headers
from portwright.store import ApiKeyRecord, Store

__all__ = ["AuthMiddleware"]


class _KeyCache:
    """Key rows by prefix for a short while (revocation takes effect within `ttl`)."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._rows: dict[str, tuple[float, ApiKeyRecord | None]] = {}

    async def get(self, prefix: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        cached = self._rows.get(prefix)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await asyncio.to_thread(self.store.accounts.key_by_prefix, prefix)
        if self.ttl > 0:
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[prefix] = (now + self.ttl, row)
        return row


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Store,
        limiter: RateLimiter,
        failure_limit: str,
        cache_s: float,
        public: Sequence[str],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.failure_limit = failure_limit
        self.cache = _KeyCache(store, cache_s)
        # exact paths, and prefixes (those ending in "/"): checked on every request
        self._public_paths = frozenset(public)
        self._public_prefixes = tuple(p for p in public if p.endswith("/"))

    def _is_public(self, path: str) -> bool:
        return path in self._public_paths or path.startswith(self._public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = _token(scope)
        client = (scope.get("client") or ("unknown", 0))[0]
        if token is not None and not await self.limiter.test(self.failure_limit, "auth", client):
            response = await self._too_many(client)
            await response(scope, receive, send)
            return
        principal = await self._verify(token) if token is not None else None
        if principal is None:
            decision = await self.limiter.hit(self.failure_limit, "auth", client)
            if not decision.allowed:
                response = await self._too_many(client)
            else:
                message = (
                    "missing API key: send `Authorization: Bearer <key>`"
                    if token is None
                    else "invalid or revoked API key"
                )
                response = error_response(
                    401, "unauthorized", message, headers={"www-authenticate": "Bearer"}
                )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        with structlog.contextvars.bound_contextvars(tenant_id=principal.tenant_id):
            await self.app(scope, receive, send)

    async def _too_many(self, client: str) -> JSONResponse:
        decision = await self.limiter.peek(self.failure_limit, "auth", client)
        return error_response(
            429,
            "too_many_auth_failures",
            "too many failed authentications from this address; retry later",
            headers=rate_headers(decision, limited=True),
        )

    async def _verify(self, token: str) -> Principal | None:
        parsed = parse_key(token)
        if parsed is None:
            return None
        prefix, secret = parsed
        row = await self.cache.get(prefix)
        if row is None or row.revoked_at is not None or not verify_secret(secret, row.secret_hash):
            return None
        return Principal(row.tenant_id, row.id, row.prefix, row.scope_set, row.plan)


def _token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = str(value.decode("latin-1")).partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"x-api-key" and value.strip():
            return str(value.decode("latin-1")).strip()
    return None
