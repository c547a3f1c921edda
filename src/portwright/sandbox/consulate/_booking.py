"""The consulate's calendar and hold pages: scan, hold, one-time code."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from portwright.sandbox._chaos import identity_of_scope
from portwright.sandbox.consulate._portal import Hold
from portwright.sandbox.consulate._web import WebBase, field
from portwright.sandbox.inbox import send_message

__all__ = ["BookingPages"]


class BookingPages(WebBase):
    """GET /appointments, POST /appointments/hold, the hold page, its code and resend."""

    async def appointments(self, request: Request) -> Response:
        session = self.signed_in(request)
        centers = [str(c) for c in self.ctx.options["centers"]]
        visas = [str(v) for v in self.ctx.options["visa_types"]]
        center = request.query_params.get("center") or centers[0]
        visa = request.query_params.get("visa") or visas[0]
        if center not in centers:
            return self.message(session, 400, "unknown center", "Appointments")
        if visa not in visas:
            return self.message(session, 400, "unknown visa type", "Appointments")
        self.portal.sweep()
        return self.page(
            "appointments",
            session,
            title="Appointments",
            centers=centers,
            visas=visas,
            center=center,
            visa=visa,
            slots=self.portal.calendar.open_slots(center, visa),
            portal_now=self.portal.calendar.sim_time() if self.portal.calendar.model else None,
        )

    async def create_hold(self, request: Request) -> Response:
        session, form = await self.signed_in_form(request)
        assert session.email is not None
        slot = self.portal.calendar.slot(field(form, "slot_id"))
        if slot is None:
            return self.message(session, 404, "unknown slot", "Appointments")
        if not slot.is_open(self.portal.now()):
            return self.message(session, 409, "slot taken", "Appointments")
        reference = field(form, "client_reference").strip()[:200]
        hold = self.portal.create_hold(session.email, slot, reference)
        self.ctx.ledger.record(
            "hold",
            hold.id,
            session.email,
            slot_id=slot.id,
            client_reference=reference,
            identity=identity_of_scope(request.scope),
        )
        await self.send_code(hold)
        return self.hold_page(session, hold)

    async def send_code(self, hold: Hold) -> None:
        ttl = round(hold.expires_at - hold.created_at)
        await send_message(
            self.ctx,
            to=hold.email,
            channel="email",
            subject="Your appointment hold code",
            body=(
                f"Your one-time code is {hold.code}. Enter it within {ttl} seconds to keep "
                f"your appointment on {hold.slot.when_text} ({hold.slot.center}). Hold {hold.id}."
            ),
        )

    async def show_hold(self, request: Request) -> Response:
        session = self.signed_in(request)
        hold = self.own_hold(session, str(request.path_params["hold_id"]))
        self.portal.sweep()
        if hold.booking is not None:
            return self.confirmation_page(session, hold)
        if hold.state == "expired":
            return self.hold_page(session, hold, status=410, error="hold expired")
        return self.hold_page(session, hold)

    async def submit_code(self, request: Request) -> Response:
        session, form = await self.signed_in_form(request)
        hold = self.own_hold(session, str(request.path_params["hold_id"]))
        if hold.booking is not None:
            return self.confirmation_page(session, hold)
        if hold.state == "expired":
            return self.hold_page(session, hold, status=410, error="hold expired")
        if hold.payment_id is not None:
            return self.payment_page(session, self.portal.payments[hold.payment_id])
        if not hmac.compare_digest(field(form, "code").strip().encode(), hold.code.encode()):
            return self.hold_page(session, hold, status=400, error="wrong code")
        return self.payment_page(session, self.portal.verify_code(hold))

    async def resend_code(self, request: Request) -> Response:
        session, _ = await self.signed_in_form(request)
        hold = self.own_hold(session, str(request.path_params["hold_id"]))
        if hold.state == "expired":
            return self.hold_page(session, hold, status=410, error="hold expired")
        if hold.state != "held":
            return self.hold_page(session, hold, status=409, error="code already used")
        hold.code = self.portal.new_code()
        await self.send_code(hold)
        return self.hold_page(session, hold, notice="a new code was sent")
