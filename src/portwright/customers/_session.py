"""The pages before a session: sign up, verify, sign in, forgot and reset the password.

Forms without a session are CSRF-protected by a double-submit cookie; failed logins (and
reset requests) are rate limited per address and per account.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from portwright.customers._accounts import AccountError, Accounts
from portwright.customers._auth import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_TTL_S,
    Customer,
    need,
)
from portwright.customers._render import PREFIX, page
from portwright.store import CustomerRecord
from portwright.webauth import LoginLimiter, csrf_matches, new_token, safe_next

__all__ = ["open_session", "session_router"]

_EXPIRED = "The form expired (CSRF check failed). Reload the page and retry."


def _form(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Response:
    """An anonymous form page with a fresh double-submit CSRF token (cookie + field)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token(24)
    response = page(request, template, None, status_code=status_code, form_csrf=token, **context)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path=PREFIX)
    return response


def _form_ok(request: Request, given: str) -> bool:
    return csrf_matches(given, request.cookies.get(LOGIN_CSRF_COOKIE, ""))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_router(accounts: Accounts, *, signup_open: bool) -> APIRouter:  # noqa: PLR0915 - one closure per page
    router = APIRouter()

    def expired(request: Request) -> Response:
        return page(request, "error.html", None, status_code=403, message=_EXPIRED)

    @router.get("/signup")
    async def signup_form(request: Request) -> Response:
        if not signup_open:
            return page(
                request,
                "error.html",
                None,
                status_code=404,
                message="Sign-up is by invitation here: ask your organisation's owner.",
            )
        return _form(request, "signup.html", errors={}, values={})

    @router.post("/signup")
    async def signup(
        request: Request,
        organisation: Annotated[str, Form(max_length=100)] = "",
        email: Annotated[str, Form(max_length=320)] = "",
        password: Annotated[str, Form(max_length=400)] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        if not signup_open:
            return page(request, "error.html", None, status_code=404, message="Sign-up is closed.")
        if not _form_ok(request, csrf_token):
            return expired(request)
        limiter: LoginLimiter = request.app.state.signup_limiter
        if limiter.blocked(f"ip:{_client(request)}"):
            return _form(
                request,
                "signup.html",
                status_code=429,
                errors={"form": "Too many sign-ups from your address. Wait a few minutes."},
                values={"organisation": organisation, "email": email},
            )
        problems = await asyncio.to_thread(
            accounts.signup_problems, organisation=organisation, email=email, password=password
        )
        user = None
        if not problems:
            try:
                user = await asyncio.to_thread(
                    accounts.signup, organisation=organisation, email=email, password=password
                )
            except AccountError as exc:  # lost a race for the name or the email
                problems = {exc.field: exc.message}
        if user is None:
            return _form(
                request,
                "signup.html",
                status_code=422,
                errors=problems,
                values={"organisation": organisation, "email": email},
            )
        limiter.fail(f"ip:{_client(request)}")  # counts sign-ups, not only failures
        request.app.state.poke()
        return page(
            request,
            "notice.html",
            None,
            title="Check your email",
            message=f"We sent a link to {user.email}. Open it to confirm your address, "
            "then sign in.",
        )

    @router.get("/verify")
    async def verify(request: Request, token: str = "") -> Response:
        user = await asyncio.to_thread(accounts.verify, token) if token else None
        if user is None:
            return page(
                request,
                "error.html",
                None,
                status_code=400,
                message="This verification link is invalid, used or expired. "
                "Sign in to get a new one.",
            )
        return page(
            request,
            "notice.html",
            None,
            title="Email confirmed",
            message=f"{user.email} is confirmed. You can sign in now.",
            action=(f"{PREFIX}/login", "Sign in"),
        )

    @router.get("/login")
    async def login_form(request: Request, next: str = "") -> Response:
        return _form(request, "login.html", next=next, error="", resend=False)

    @router.post("/login")
    async def login(
        request: Request,
        email: Annotated[str, Form(max_length=320)] = "",
        password: Annotated[str, Form(max_length=400)] = "",
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        if not _form_ok(request, csrf_token):
            return expired(request)
        limiter: LoginLimiter = request.app.state.login_limiter
        keys = (f"ip:{_client(request)}", f"email:{email.strip().lower()}")
        if limiter.blocked(*keys):
            return _form(
                request,
                "login.html",
                status_code=429,
                next=next,
                resend=False,
                error="Too many failed sign-ins. Wait a few minutes.",
            )
        user = await asyncio.to_thread(accounts.authenticate, email, password)
        if user is None:
            limiter.fail(*keys)
            return _form(
                request,
                "login.html",
                status_code=401,
                next=next,
                resend=False,
                error="Wrong email or password.",
            )
        if user.verified_at is None:
            await asyncio.to_thread(accounts.send_verification, user)
            request.app.state.poke()
            return _form(
                request,
                "login.html",
                status_code=403,
                next=next,
                resend=True,
                error="Confirm your email first: we sent you a new link.",
            )
        response = await open_session(request, accounts, user, next, via="password")
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
        return response

    @router.post("/logout")
    async def logout(
        request: Request, me: Annotated[Customer, Depends(need("member"))]
    ) -> Response:
        await request.app.state.sessions.close(request)
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @router.get("/forgot")
    async def forgot_form(request: Request) -> Response:
        return _form(request, "forgot.html", sent=False)

    @router.post("/forgot")
    async def forgot(
        request: Request,
        email: Annotated[str, Form(max_length=320)] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        if not _form_ok(request, csrf_token):
            return expired(request)
        limiter: LoginLimiter = request.app.state.login_limiter
        keys = (f"ip:{_client(request)}", f"reset:{email.strip().lower()}")
        if not limiter.blocked(*keys):
            limiter.fail(*keys)  # counts requests: a mailbox is not flooded with links
            await asyncio.to_thread(accounts.request_reset, email)
            request.app.state.poke()
        # The same answer whether or not the account exists.
        return _form(request, "forgot.html", sent=True)

    @router.get("/reset")
    async def reset_form(request: Request, token: str = "") -> Response:
        return _form(request, "reset.html", token=token, error="")

    @router.post("/reset")
    async def reset(
        request: Request,
        token: Annotated[str, Form(max_length=200)] = "",
        password: Annotated[str, Form(max_length=400)] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        if not _form_ok(request, csrf_token):
            return expired(request)
        try:
            user = await asyncio.to_thread(accounts.reset, token, password)
        except AccountError as exc:
            return _form(
                request,
                "reset.html",
                status_code=422,
                token=token,
                error=f"Password {exc.message}.",
            )
        if user is None:
            return _form(
                request,
                "reset.html",
                status_code=400,
                token=token,
                error="This link is invalid, used or expired: ask for a new one.",
            )
        return page(
            request,
            "notice.html",
            None,
            title="Password changed",
            message="Your password is changed and your other sessions are signed out.",
            action=(f"{PREFIX}/login", "Sign in"),
        )

    return router


async def open_session(
    request: Request, accounts: Accounts, user: CustomerRecord, next_path: str, *, via: str
) -> Response:
    """Sign `user` in: a new session, its cookie, an audited `portal.login`, and a redirect
    to `next_path` (when it is one of the portal's own paths)."""
    token = await request.app.state.sessions.open(user)
    await asyncio.to_thread(
        accounts.store.audit.record,
        actor=f"user:{user.email}",
        action="portal.login",
        target_type="customer_user",
        target_id=user.id,
        before=None,
        after={"role": user.role, "via": via},
        tenant_id=user.tenant_id,
    )
    response = RedirectResponse(safe_next(next_path, PREFIX), status_code=303)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="lax", path=PREFIX, max_age=int(SESSION_TTL_S)
    )
    return response
