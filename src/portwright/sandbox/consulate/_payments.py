"""The consulate's payment and confirmation pages, and the signed payment webhook."""

from __future__ import annotations

import asyncio
import logging
import re

from starlette.requests import Request
from starlette.responses import Response

from portwright.sandbox.consulate._portal import Payment, Session
from portwright.sandbox.consulate._web import RequestDeniedError, WebBase, field
from portwright.sandbox.consulate._webhook import deliver, payment_event

__all__ = ["PaymentPages"]

log = logging.getLogger(__name__)


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


class PaymentPages(WebBase):
    """GET /payments/{id}, POST /payments/{id}/pay, POST /appointments/confirm, GET /bookings."""

    _background: set[asyncio.Task[None]]

    def payment_of(self, request: Request, session: Session | None) -> Payment:
        payment = self.portal.payments.get(str(request.path_params["payment_id"]))
        if payment is None:
            raise RequestDeniedError(self.message(session, 404, "unknown payment", "Not found"))
        return payment

    async def show_payment(self, request: Request) -> Response:
        session = self.session_of(request)
        payment = self.payment_of(request, session)
        self.portal.sweep()
        return self.payment_page(session, payment)

    async def pay(self, request: Request) -> Response:
        session = self.session_of(request)
        payment = self.payment_of(request, session)
        form = await request.form()
        self.portal.sweep()
        if self.portal.holds[payment.hold_id].state == "expired":
            return self.message(session, 410, "hold expired", "Payment")
        if payment.status == "pending":
            return self.payment_page(session, payment, status=202)
        if payment.status == "succeeded":
            return self.payment_page(session, payment)
        card = re.sub(r"[\s-]", "", field(form, "card_number"))
        if not (card.isdigit() and 12 <= len(card) <= 19 and _luhn_ok(card)):
            return self.message(session, 400, "invalid card number", "Payment")
        self.portal.start_payment(payment, card)
        task = asyncio.create_task(self.settle_and_notify(payment))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return self.payment_page(session, payment, status=202)

    async def settle_and_notify(self, payment: Payment) -> None:
        """Wait out the payment delay, settle, then send the signed webhook if one is set."""
        portal, options = self.portal, self.ctx.options
        try:
            while payment.status == "pending" and payment.settle_at is not None:
                await asyncio.sleep(max(0.01, payment.settle_at - portal.now()))
                portal.settle(payment)
            url = options.get("payment_webhook_url")
            if not url:
                return
            hold = portal.holds[payment.hold_id]
            event_id = "evt_" + portal.new_token("event", 24)
            payment.events.append(event_id)
            event = payment_event(
                event_id,
                succeeded=payment.status == "succeeded",
                payment_id=payment.id,
                amount=payment.amount,
                currency=payment.currency,
                hold_id=hold.id,
                client_reference=hold.client_reference,
            )
            await deliver(
                str(url),
                str(options["payment_webhook_secret"]),
                event,
                ledger=self.ctx.ledger,
                attempts=int(options["webhook_attempts"]),
                backoff_s=float(options["webhook_backoff_s"]),
            )
        except Exception:
            log.exception("payment %s: settling or notifying failed", payment.id)

    async def confirm(self, request: Request) -> Response:
        session, form = await self.signed_in_form(request)
        hold = self.own_hold(session, field(form, "hold_id"))
        if hold.booking is not None:
            return self.confirmation_page(session, hold)
        if hold.state == "expired":
            return self.hold_page(session, hold, status=410, error="hold expired")
        payment = self.portal.payments.get(hold.payment_id or "")
        if payment is not None and payment.status == "pending":
            return self.message(session, 409, "payment pending", "Confirm booking")
        if payment is None or payment.status != "succeeded":
            return self.message(session, 402, "payment required", "Confirm booking")
        self.portal.confirm(hold)
        return self.confirmation_page(session, hold)

    async def bookings(self, request: Request) -> Response:
        session = self.signed_in(request)
        wanted = request.query_params.get("client_reference")
        found = [
            b
            for b in self.portal.bookings
            if b.email == session.email and (wanted is None or b.client_reference == wanted)
        ]
        return self.page("bookings", session, title="My bookings", bookings=found)
