"""Authentication as pure ASGI middleware: a valid API key, or a customer user's valid
access token (a short-lived JWT from `POST /v1/auth/token`), puts a `Principal` on the scope.

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
from portwright.store import ApiKeyRecord, CustomerRecord, Store
from portwright.webauth import AccessTokens

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


class _UserCache:
    """Customer users (and their tenant's plan) by id for a short while: a disabled user's
    tokens stop working within `ttl`, however long they had left."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._rows: dict[str, tuple[float, tuple[CustomerRecord, str] | None]] = {}

    def _load(self, user_id: str) -> tuple[CustomerRecord, str] | None:
        user = self.store.customers.user(user_id)
        if user is None:
            return None
        return user, self.store.tenants.get(user.tenant_id).plan

    async def get(self, user_id: str) -> tuple[CustomerRecord, str] | None:
        now = time.monotonic()
        cached = self._rows.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await asyncio.to_thread(self._load, user_id)
        if self.ttl > 0:
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[user_id] = (now + self.ttl, found)
        return found


# What a customer user's access token may do on the API: their tenant's jobs, as a key
# with the default scope would.
USER_SCOPES = frozenset({"jobs"})


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
        tokens: AccessTokens | None = None,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.users = _UserCache(store, cache_s)
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
                    "missing API key: send `Authorization: Bearer <key or access token>`"
                    if token is None
                    else "invalid or revoked API key, or an invalid or expired access token"
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
            if self.tokens is not None and AccessTokens.looks_like(token):
                return await self._verify_access(token)
            return None
        prefix, secret = parsed
        row = await self.cache.get(prefix)
        if row is None or row.revoked_at is not None or not verify_secret(secret, row.secret_hash):
            return None
        return Principal(row.tenant_id, row.id, row.prefix, row.scope_set, row.plan)

    async def _verify_access(self, token: str) -> Principal | None:
        assert self.tokens is not None
        claims = self.tokens.verify(token)
        if claims is None:
            return None
        found = await self.users.get(claims.user_id)
        if found is None:
            return None
        user, plan = found
        if (
            user.tenant_id != claims.tenant_id
            or user.disabled_at is not None
            or user.verified_at is None
        ):
            return None
        return Principal(user.tenant_id, user.id, f"user:{user.id}", USER_SCOPES, plan,
                         user_id=user.id, role=user.role)  # fmt: skip


def _token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = str(value.decode("latin-1")).partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"x-api-key" and value.strip():
            return str(value.decode("latin-1")).strip()
    return None
