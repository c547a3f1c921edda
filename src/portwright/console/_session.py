"""Login and logout. Login is CSRF-protected by a double-submit cookie and rate limited."""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import COOKIE, LOGIN_CSRF_COOKIE, SESSION_TTL_S, Operator, need
from portwright.console._render import PREFIX, page
from portwright.webauth import DUMMY_HASH, safe_next, verify_password

__all__ = ["session_router"]


def session_router() -> APIRouter:
    router = APIRouter()

    @router.get("/login")
    async def login_form(request: Request, next: str = "") -> Response:
        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", None, login_csrf=token, next=next, error="")
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path=PREFIX)
        return response

    @router.post("/login")
    async def login(
        request: Request,
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "",
    ) -> Response:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
            message = "The login form expired (CSRF check failed). Reload and retry."
            return page(request, "error.html", None, status_code=403, message=message)
        limiter = request.app.state.login_limiter
        client = request.client.host if request.client else "unknown"
        keys = (f"ip:{client}", f"email:{email.strip().lower()}")
        if limiter.blocked(*keys):
            return page(request, "login.html", None, status_code=429, login_csrf=expected,
                        next=next, error="Too many failed logins. Wait a few minutes.")  # fmt: skip
        store = request.app.state.service.store
        found = await asyncio.to_thread(store.console.operator_by_email, email)
        stored = found.password_hash if found and found.disabled_at is None else DUMMY_HASH
        ok = await asyncio.to_thread(verify_password, password, stored)
        if found is None or not ok or found.disabled_at is not None:
            limiter.fail(*keys)
            return page(request, "login.html", None, status_code=401, login_csrf=expected,
                        next=next, error="Wrong email or password.")  # fmt: skip
        token = await request.app.state.sessions.open(found)
        await asyncio.to_thread(
            store.audit.record, actor=f"op:{found.email}", action="console.login",
            target_type="operator", target_id=found.id, before=None,
            after={"role": found.role}, tenant_id=found.tenant_id,
        )  # fmt: skip
        target = safe_next(next, PREFIX)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="lax", path=PREFIX, max_age=int(SESSION_TTL_S)
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
        return response

    @router.post("/logout")
    async def logout(
        request: Request, op: Annotated[Operator, Depends(need("viewer"))]
    ) -> Response:
        await request.app.state.sessions.close(request)
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    return router
