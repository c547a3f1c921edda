"""Operator sessions: cookies, roles, tenant scope, CSRF and the login rate limit."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from portwright.store import OperatorRecord, Store
from portwright.webauth import LoginLimiter, csrf_matches, csrf_value, token_hash

__all__ = [
    "COOKIE",
    "ROLES",
    "ForbiddenError",
    "LoginLimiter",
    "LoginRequiredError",
    "Operator",
    "Sessions",
    "need",
    "token_hash",
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


def need(role: str) -> Callable[[Request], Coroutine[Any, Any, Operator]]:
    """A dependency: the signed-in operator with at least `role`; POSTs must carry the
    session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`)."""

    async def dependency(request: Request) -> Operator:
        sessions: Sessions = request.app.state.sessions
        op = await sessions.current(request)
        if op is None:
            raise LoginRequiredError
        if request.method not in ("GET", "HEAD") and not csrf_matches(
            await csrf_value(request), op.csrf_token
        ):
            raise ForbiddenError("missing or wrong CSRF token")
        if not op.has(role):
            raise ForbiddenError(f"needs the {role} role (you are {op.role})")
        return op

    return dependency
