"""Operator sessions: cookies, roles, tenant scope, CSRF and the login rate limit."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from portwright.store import OperatorRecord, Store

__all__ = [
    "COOKIE",
    "ROLES",
    "ForbiddenError",
    "LoginLimiter",
    "LoginRequiredError",
    "Operator",
    "Sessions",
    "need",
]

COOKIE = "pw_console"
LOGIN_CSRF_COOKIE = "pw_console_login"
ROLES = ("viewer", "operator", "admin")
SESSION_TTL_S = 12 * 3600.0


class LoginRequiredError(Exception):
    """No valid session: pages redirect to the login form, other calls answer 401."""


class ForbiddenError(Exception):
    """The operator is signed in but may not do this (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Operator:
    """The signed-in operator, as routes see them."""

    id: str
    email: str
    role: str
    tenant_id: str | None
    csrf_token: str
    tenant_name: str | None = None

    @property
    def actor(self) -> str:
        return f"op:{self.email}"

    @property
    def platform_wide(self) -> bool:
        return self.tenant_id is None

    def has(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Opens, reads and closes sessions; the cookie holds a random token, the DB its hash."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tenant_names: dict[str, str] = {}

    def _tenant_name(self, tenant_id: str) -> str:
        name = self._tenant_names.get(tenant_id)
        if name is None:
            try:
                name = self.store.tenants.get(tenant_id).name
            except LookupError:
                name = tenant_id
            self._tenant_names[tenant_id] = name
        return name

    async def open(self, operator: OperatorRecord) -> str:
        token = secrets.token_urlsafe(32)
        await asyncio.to_thread(
            self.store.console.open_session,
            token_hash=token_hash(token),
            operator_id=operator.id,
            csrf_token=secrets.token_urlsafe(24),
            ttl_s=SESSION_TTL_S,
        )
        return token

    async def current(self, request: Request) -> Operator | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        found = await asyncio.to_thread(self.store.console.session, token_hash(token))
        if found is None:
            return None
        session, op = found
        tenant_name = None
        if op.tenant_id is not None:
            tenant_name = await asyncio.to_thread(self._tenant_name, op.tenant_id)
        return Operator(op.id, op.email, op.role, op.tenant_id, session.csrf_token, tenant_name)

    async def close(self, request: Request) -> None:
        token = request.cookies.get(COOKIE)
        if token:
            await asyncio.to_thread(self.store.console.close_session, token_hash(token))


async def _csrf_value(request: Request) -> str:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


def need(role: str) -> Callable[[Request], Coroutine[Any, Any, Operator]]:
    """A dependency: the signed-in operator with at least `role`; POSTs must carry the
    session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`)."""

    async def dependency(request: Request) -> Operator:
        sessions: Sessions = request.app.state.sessions
        op = await sessions.current(request)
        if op is None:
            raise LoginRequiredError
        if request.method not in ("GET", "HEAD"):
            given = await _csrf_value(request)
            if not hmac.compare_digest(given.encode(), op.csrf_token.encode()):
                raise ForbiddenError("missing or wrong CSRF token")
        if not op.has(role):
            raise ForbiddenError(f"needs the {role} role (you are {op.role})")
        return op

    return dependency


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
