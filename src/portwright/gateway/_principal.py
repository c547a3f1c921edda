"""Who is calling: set on the ASGI scope by the auth middleware, read by everything after it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.types import Scope

__all__ = ["Principal", "current_principal", "principal_of"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant, the credential (an API key, or a customer user's access
    token), its scopes and the tenant's plan. For an access token `user_id` and `role` name
    the customer user (owner or member); `key_id` is then the user's id (usage is recorded
    per key or per user) and `key_prefix` reads `user:<id>`."""

    tenant_id: str
    key_id: str
    key_prefix: str
    scopes: frozenset[str]
    plan: str
    user_id: str | None = None
    role: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"user:{self.user_id}" if self.user_id else f"api:{self.key_prefix}"


def principal_of(scope: Scope) -> Principal | None:
    state = scope.get("state") or {}
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else None


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated principal (the middleware guarantees one)."""
    principal = principal_of(request.scope)
    if principal is None:  # only reachable if the app is mounted without its middleware
        raise HTTPException(
            401, "missing API key: send `Authorization: Bearer <key or access token>`"
        )
    return principal
