"""Who is calling: set on the ASGI scope by the auth middleware, read by everything after it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.types import Scope

__all__ = ["Principal", "current_principal", "principal_of"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The tenant and key of a request, with the key's scopes and the tenant's plan."""

    tenant_id: str
    key_id: str
    key_prefix: str
    scopes: frozenset[str]
    plan: str


def principal_of(scope: Scope) -> Principal | None:
    state = scope.get("state") or {}
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else None


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated principal (the middleware guarantees one)."""
    principal = principal_of(request.scope)
    if principal is None:  # only reachable if the app is mounted without its middleware
        raise HTTPException(401, "missing API key: send `Authorization: Bearer <key>`")
    return principal
