"""Customer page sessions, with the console's rules: a cookie holding a random token (its
hash stored), the session's CSRF token on every non-GET request, roles (member < owner)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from portwright.store import CustomerRecord, Store
from portwright.webauth import csrf_matches, csrf_value, new_token, token_hash

__all__ = [
    "COOKIE",
    "LOGIN_CSRF_COOKIE",
    "SESSION_TTL_S",
    "Customer",
    "CustomerSessions",
    "ForbiddenError",
    "LoginRequiredError",
    "need",
]

COOKIE = "pw_app"
LOGIN_CSRF_COOKIE = "pw_app_form"
SESSION_TTL_S = 12 * 3600.0
_ROLES = ("member", "owner")


class LoginRequiredError(Exception):
    """No valid session: pages redirect to the login form, other calls answer 401."""


class ForbiddenError(Exception):
    """Signed in, but not allowed (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Customer:
    """The signed-in customer user, as routes see them."""

    user: CustomerRecord
    csrf_token: str
    tenant_name: str

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def tenant_id(self) -> str:
        return self.user.tenant_id

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def actor(self) -> str:
        return f"user:{self.user.email}"

    def has(self, role: str) -> bool:
        return _ROLES.index(self.user.role) >= _ROLES.index(role)


class CustomerSessions:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def open(self, user: CustomerRecord) -> str:
        token = new_token()
        await asyncio.to_thread(
            self.store.customers.open_session,
            token_hash=token_hash(token),
            user=user,
            csrf_token=new_token(24),
            ttl_s=SESSION_TTL_S,
        )
        return token

    async def current(self, request: Request) -> Customer | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        found = await asyncio.to_thread(self.store.customers.session, token_hash(token))
        if found is None or found[1].verified_at is None:
            return None
        session, user = found
        tenant = await asyncio.to_thread(self.store.tenants.get, user.tenant_id)
        return Customer(user, session.csrf_token, tenant.name)

    async def close(self, request: Request) -> None:
        token = request.cookies.get(COOKIE)
        if token:
            await asyncio.to_thread(self.store.customers.close_session, token_hash(token))


def need(role: str) -> Callable[[Request], Coroutine[Any, Any, Customer]]:
    """A dependency: the signed-in customer with at least `role`; non-GET requests must
    carry the session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`)."""

    async def dependency(request: Request) -> Customer:
        sessions: CustomerSessions = request.app.state.sessions
        customer = await sessions.current(request)
        if customer is None:
            raise LoginRequiredError
        if request.method not in ("GET", "HEAD") and not csrf_matches(
            await csrf_value(request), customer.csrf_token
        ):
            raise ForbiddenError("missing or wrong CSRF token")
        if not customer.has(role):
            raise ForbiddenError(f"needs the {role} role (you are a {customer.role})")
        return customer

    return dependency
