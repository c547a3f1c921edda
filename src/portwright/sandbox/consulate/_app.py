"""The consulate's routes: every page handler, assembled into one Starlette app."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.routing import Route

from portwright.sandbox._world import ServiceContext
from portwright.sandbox.consulate._accounts import AccountPages
from portwright.sandbox.consulate._booking import BookingPages
from portwright.sandbox.consulate._payments import PaymentPages
from portwright.sandbox.consulate._portal import Portal
from portwright.sandbox.consulate._web import guarded

__all__ = ["build_app"]


class _Consulate(AccountPages, BookingPages, PaymentPages):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx, Portal(ctx))
        self._background: set[asyncio.Task[None]] = set()

    def routes(self) -> list[Route]:
        post = ["POST"]
        return [
            Route("/", guarded(self.home)),
            Route("/login", guarded(self.login_form), methods=["GET"]),
            Route("/login", guarded(self.login), methods=post),
            Route("/logout", guarded(self.logout), methods=post),
            Route("/register", guarded(self.register), methods=["GET", "POST"]),
            Route("/appointments", guarded(self.appointments)),
            Route("/appointments/hold", guarded(self.create_hold), methods=post),
            Route("/appointments/hold/{hold_id}", guarded(self.show_hold)),
            Route("/appointments/hold/{hold_id}/otp", guarded(self.submit_code), methods=post),
            Route("/appointments/hold/{hold_id}/resend", guarded(self.resend_code), methods=post),
            Route("/appointments/confirm", guarded(self.confirm), methods=post),
            Route("/payments/{payment_id}", guarded(self.show_payment)),
            Route("/payments/{payment_id}/pay", guarded(self.pay), methods=post),
            Route("/bookings", guarded(self.bookings)),
        ]


def build_app(ctx: ServiceContext) -> Starlette:
    """The "consulate" service (scenario 1). `app.state.portal` holds its state, for tests."""
    consulate = _Consulate(ctx)
    app = Starlette(routes=consulate.routes())
    app.state.portal = consulate.portal
    return app
