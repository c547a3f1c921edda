"""What every consulate page handler shares: rendering, sessions, and the guards."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from portwright.sandbox._world import ServiceContext
from portwright.sandbox.consulate._portal import Hold, Payment, Portal, Session
from portwright.sandbox.consulate._templates import render

__all__ = ["SESSION_COOKIE", "RequestDeniedError", "WebBase", "field", "guarded"]

SESSION_COOKIE = "cns_session"
Handler = Callable[[Request], Awaitable[Response]]


class RequestDeniedError(Exception):
    """A request stopped early by a guard; carries the page to answer with."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def guarded(handler: Handler) -> Handler:
    """Turn a guard's `RequestDeniedError` into its response."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except RequestDeniedError as denied:
            return denied.response

    return endpoint


def field(form: FormData, name: str) -> str:
    """A form field as text ("" when missing or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


class WebBase:
    """Rendering and guards over one `Portal`."""

    def __init__(self, ctx: ServiceContext, portal: Portal) -> None:
        self.ctx = ctx
        self.portal = portal

    # -- rendering -----------------------------------------------------------------------

    def page(
        self, template: str, session: Session | None, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        body = render(
            template,
            version=self.ctx.chaos.knobs.dom_version,
            csrf=session.csrf if session else "",
            email=session.email if session else None,
            **context,
        )
        response = HTMLResponse(body, status_code=status)
        if session is not None:
            response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="lax")
        return response

    def message(self, session: Session | None, status: int, error: str, title: str) -> Response:
        """A page that only says what went wrong, in `.error`."""
        return self.page("message", session, status=status, error=error, title=title, link=None)

    def hold_page(
        self, session: Session, hold: Hold, *, status: int = 200, **extra: Any
    ) -> Response:
        left = max(0, round(hold.expires_at - self.portal.now()))
        expires = datetime.fromtimestamp(hold.expires_wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self.page(
            "hold",
            session,
            status=status,
            title="Slot held",
            hold=hold,
            expires_at=int(hold.expires_wall),
            expires_in=left,
            expires_text=expires,
            **extra,
        )

    def payment_page(
        self, session: Session | None, payment: Payment, *, status: int = 200
    ) -> Response:
        hold = self.portal.holds[payment.hold_id]
        return self.page(
            "payment",
            session,
            status=status,
            title="Payment",
            payment=payment,
            amount_text=f"{payment.amount / 100:.2f}",
            hold_expired=hold.state == "expired",
            owner=session is not None and session.email == hold.email,
        )

    def confirmation_page(self, session: Session, hold: Hold) -> Response:
        return self.page("confirmation", session, title="Booking confirmed", booking=hold.booking)

    # -- guards --------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        token = request.cookies.get(SESSION_COOKIE)
        return self.portal.sessions.get(token) if token else None

    def signed_in(self, request: Request) -> Session:
        """The signed-in session, or stop: GETs go to /login, other methods get 401."""
        session = self.session_of(request)
        if session is not None and session.email is not None:
            return session
        if request.method == "GET":
            target = quote(f"{request.url.path}?{request.url.query}", safe="/?=&")
            raise RequestDeniedError(RedirectResponse(f"/login?next={target}", status_code=303))
        raise RequestDeniedError(self.message(None, 401, "login required", "Sign in required"))

    def check_csrf(self, request: Request, session: Session, form: FormData) -> None:
        sent = field(form, "csrf") or request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            denied = self.message(session, 400, "invalid csrf token", "Request refused")
            raise RequestDeniedError(denied)

    async def signed_in_form(self, request: Request) -> tuple[Session, FormData]:
        """A signed-in POST with a valid CSRF token; expiry and settlement swept first."""
        session = self.signed_in(request)
        form = await request.form()
        self.check_csrf(request, session, form)
        self.portal.sweep()
        return session, form

    def own_hold(self, session: Session, hold_id: str) -> Hold:
        hold = self.portal.holds.get(hold_id)
        if hold is None or hold.email != session.email:
            raise RequestDeniedError(self.message(session, 404, "unknown hold", "Not found"))
        return hold
