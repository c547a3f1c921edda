"""The consulate's account pages: sign in (with captcha), sign out, register."""

from __future__ import annotations

import hmac
import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portwright.sandbox.captcha import new_challenge, render_challenge_html, verify
from portwright.sandbox.consulate._portal import Session
from portwright.sandbox.consulate._web import SESSION_COOKIE, WebBase, field

__all__ = ["AccountPages"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") else "/appointments"


class AccountPages(WebBase):
    """GET/POST /login, POST /logout, GET/POST /register, GET /."""

    async def home(self, request: Request) -> Response:
        session = self.session_of(request)
        target = "/appointments" if session and session.email else "/login"
        return RedirectResponse(target, status_code=303)

    def login_page(
        self,
        session: Session,
        *,
        error: str | None = None,
        status: int = 200,
        force_captcha: bool = False,
        next_: str = "/appointments",
        email: str = "",
    ) -> Response:
        """The sign-in form; a captcha with probability `captcha_rate`, or always when forced."""
        chaos = self.ctx.chaos
        session.captcha_id = None
        captcha = None
        if force_captcha or chaos.chance(chaos.knobs.captcha_rate, "login-captcha"):
            challenge = new_challenge(self.ctx, key="login")
            session.captcha_id = challenge.id
            captcha = render_challenge_html(challenge)
        return self.page(
            "login",
            session,
            status=status,
            title="Sign in",
            error=error,
            captcha=captcha,
            next=next_,
            form_email=email,
        )

    async def login_form(self, request: Request) -> Response:
        session = self.session_of(request) or self.portal.new_session()
        return self.login_page(session, next_=_safe_next(request.query_params.get("next", "")))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        email = field(form, "email").strip().lower()
        next_ = _safe_next(field(form, "next"))
        session = self.session_of(request)
        if session is None or not hmac.compare_digest(
            field(form, "csrf").encode(), session.csrf.encode()
        ):
            fresh = session or self.portal.new_session()
            return self.login_page(
                fresh, error="invalid csrf token", status=400, next_=next_, email=email
            )
        pending = session.captcha_id
        if pending is not None:
            answer = field(form, "captcha_answer")
            error = None
            if not answer:
                error = "captcha required"
            elif field(form, "captcha_id") != pending or not verify(self.ctx, pending, answer):
                error = "captcha wrong"
            if error:
                return self.login_page(
                    session, error=error, force_captcha=True, next_=next_, email=email
                )
        accounts = self.portal.accounts
        if email not in accounts:
            return self.login_page(session, error="unknown account", next_=next_, email=email)
        if not hmac.compare_digest(field(form, "password").encode(), accounts[email].encode()):
            return self.login_page(session, error="invalid credentials", next_=next_, email=email)
        self.portal.sessions.pop(session.token, None)
        signed_in = self.portal.new_session(email)
        response = RedirectResponse(next_, status_code=303)
        response.set_cookie(SESSION_COOKIE, signed_in.token, httponly=True, samesite="lax")
        return response

    async def logout(self, request: Request) -> Response:
        session = self.session_of(request)
        if session is not None:
            self.portal.sessions.pop(session.token, None)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def register(self, request: Request) -> Response:
        session = self.session_of(request)
        if request.method == "GET":
            return self.page("register", session, title="Register", registered=None)
        form = await request.form()
        email = field(form, "email").strip().lower()
        password = field(form, "password")
        status, error = 201, None
        if not _EMAIL.match(email):
            status, error = 400, "invalid email"
        elif len(password) < 4:
            status, error = 400, "password too short"
        elif email in self.portal.accounts:
            status, error = 409, "account exists"
        else:
            self.portal.accounts[email] = password
            self.ctx.ledger.record("account", email, email)
        return self.page(
            "register",
            session,
            status=status,
            title="Register",
            error=error,
            registered=None if error else email,
        )
