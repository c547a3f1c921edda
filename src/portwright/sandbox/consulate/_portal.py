"""The consulate's state: accounts, sessions, holds, payments and bookings.

Pure and synchronous: the HTTP layer (`_app`) calls in between awaits, on the
world's single event loop, so no method here can interleave with another.
Time is the calendar's elapsed seconds; expiry and payment settlement are
computed lazily by `sweep`, never by background tasks.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from portwright.sandbox._world import ServiceContext
from portwright.sandbox.consulate._calendar import Slot, SlotCalendar

__all__ = [
    "DECLINED_CARDS",
    "DEFAULT_OPTIONS",
    "Booking",
    "Hold",
    "Payment",
    "Portal",
    "Session",
]

DECLINED_CARDS = frozenset({"4000000000000002", "4000000000009995"})
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

DEFAULT_OPTIONS: dict[str, Any] = {
    "centers": ["LON", "MAN", "EDI"],
    "visa_types": ["tourist", "work", "study"],
    "release_every_s": 15.0,
    "release_jitter_s": 3.0,
    "release_size": 6,
    "take_mean_s": 30.0,
    "initial_slots": 10,
    "first_date": "2030-01-07",
    "hold_ttl_s": 120.0,
    "payment_delay_s": 0.5,
    "payment_webhook_url": None,
    "payment_webhook_secret": None,  # None: a fresh whsec_… drawn per world (read options)
    "webhook_attempts": 5,
    "webhook_backoff_s": 0.25,
    "fees": {"tourist": 8000, "work": 15000, "study": 12000},
    "currency": "GBP",
    "accounts": None,
    "release_model": None,  # a mapping: releases from the release model (see _calendar)
}

HoldState = Literal["held", "verified", "paid", "confirmed", "expired"]
PaymentStatus = Literal["requires_payment", "pending", "succeeded", "failed"]


@dataclass
class Session:
    token: str
    csrf: str
    email: str | None = None
    captcha_id: str | None = None


@dataclass
class Hold:
    id: str
    email: str
    slot: Slot
    client_reference: str
    code: str
    created_at: float
    expires_at: float
    expires_wall: float
    state: HoldState = "held"
    payment_id: str | None = None
    booking: Booking | None = None

    @property
    def booking_key(self) -> str:
        return self.client_reference or f"hold:{self.id}"


@dataclass
class Payment:
    id: str
    hold_id: str
    amount: int
    currency: str
    status: PaymentStatus = "requires_payment"
    settle_at: float | None = None
    outcome: PaymentStatus | None = None
    card_last4: str = ""
    attempts: int = 0
    events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Booking:
    reference: str
    email: str
    hold_id: str
    slot_id: str
    center: str
    visa: str
    when: str
    client_reference: str
    payment_id: str


class Portal:
    """Everything the consulate remembers, and the rules that change it."""

    def __init__(self, ctx: ServiceContext, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.options = ctx.options
        for name, value in DEFAULT_OPTIONS.items():
            self.options.setdefault(name, copy.deepcopy(value))
        if not self.options.get("payment_webhook_secret"):  # never a built-in secret
            secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
            self.options["payment_webhook_secret"] = secret
        self.secret = hashlib.sha256(f"portwright-sandbox|consulate|{ctx.seed}".encode()).digest()
        self.calendar = SlotCalendar(
            ctx.chaos.draw,
            ctx.options,
            clock=clock,
            started_at=ctx.chaos.started_at,
            seed=int(ctx.seed),
        )
        self.accounts: dict[str, str] = {}
        for account in self.options.get("accounts") or _default_accounts():
            self.accounts[str(account["email"]).strip().lower()] = str(account["password"])
        self.sessions: dict[str, Session] = {}
        self.holds: dict[str, Hold] = {}
        self.payments: dict[str, Payment] = {}
        self.bookings: list[Booking] = []
        self._active: dict[str, Hold] = {}
        self._pending: dict[str, Payment] = {}
        self._counters: dict[str, int] = defaultdict(int)

    # -- identifiers ---------------------------------------------------------------------

    def new_token(self, kind: str, length: int = 16) -> str:
        """A fresh identifier, unique and reproducible under the world seed."""
        self._counters[kind] += 1
        message = f"{kind}|{self._counters[kind]}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:length]

    def new_reference(self) -> str:
        digest = bytes.fromhex(self.new_token("reference", 12))
        return "CNS-" + "".join(_REFERENCE_ALPHABET[b % 32] for b in digest)

    def new_code(self) -> str:
        return f"{int(self.ctx.chaos.draw('otp') * 1_000_000):06d}"

    # -- sessions ------------------------------------------------------------------------

    def new_session(self, email: str | None = None) -> Session:
        session = Session(self.new_token("session", 32), self.new_token("csrf", 32), email)
        self.sessions[session.token] = session
        return session

    # -- holds ---------------------------------------------------------------------------

    def now(self) -> float:
        return self.calendar.elapsed()

    def create_hold(self, email: str, slot: Slot, client_reference: str) -> Hold:
        ttl = float(self.options["hold_ttl_s"])
        now = self.now()
        hold = Hold(
            id="h_" + self.new_token("hold", 14),
            email=email,
            slot=slot,
            client_reference=client_reference,
            code=self.new_code(),
            created_at=now,
            expires_at=now + ttl,
            expires_wall=time.time() + ttl,
        )
        self.calendar.hold(slot.id, hold.id)
        self.holds[hold.id] = hold
        self._active[hold.id] = hold
        return hold

    def verify_code(self, hold: Hold) -> Payment:
        """The hold's code was right: it moves on to payment (idempotent)."""
        if hold.payment_id is None:
            fees: dict[str, int] = self.options.get("fees") or {}
            payment = Payment(
                id="pi_" + self.new_token("payment", 20),
                hold_id=hold.id,
                amount=int(fees.get(hold.slot.visa, 8000)),
                currency=str(self.options["currency"]),
            )
            self.payments[payment.id] = payment
            hold.payment_id = payment.id
            hold.state = "verified"
        return self.payments[hold.payment_id]

    def start_payment(self, payment: Payment, card_number: str) -> None:
        payment.attempts += 1
        payment.status = "pending"
        payment.card_last4 = card_number[-4:]
        payment.settle_at = self.now() + float(self.options["payment_delay_s"])
        payment.outcome = "failed" if card_number in DECLINED_CARDS else "succeeded"
        self._pending[payment.id] = payment

    def settle(self, payment: Payment) -> None:
        """A pending payment whose delay has passed takes its outcome (exactly once)."""
        if payment.status != "pending" or payment.settle_at is None:
            return
        if self.now() < payment.settle_at or payment.outcome is None:
            return
        payment.status = payment.outcome
        self._pending.pop(payment.id, None)
        hold = self.holds[payment.hold_id]
        if payment.status == "succeeded":
            hold.state = "paid"
            self.ctx.ledger.record(
                "payment",
                payment.id,
                hold.email,
                hold_id=hold.id,
                amount=payment.amount,
                currency=payment.currency,
                client_reference=hold.client_reference,
            )
        else:
            self.ctx.ledger.record(
                "payment_declined", f"{payment.id}#{payment.attempts}", hold.email, hold_id=hold.id
            )

    def sweep(self) -> None:
        """Settle due payments, then expire holds whose time ran out; their slots come back."""
        now = self.now()
        for due in list(self._pending.values()):
            self.settle(due)
        for hold in list(self._active.values()):
            if hold.state in ("paid", "confirmed"):
                del self._active[hold.id]
                continue
            payment = self.payments.get(hold.payment_id or "")
            if payment is not None and payment.status == "pending":
                continue  # a payment in flight freezes the hold
            if now >= hold.expires_at:
                settled = payment.settle_at if payment and payment.settle_at else 0.0
                self.expire(hold, max(hold.expires_at, settled))

    def expire(self, hold: Hold, at: float) -> None:
        hold.state = "expired"
        self._active.pop(hold.id, None)
        self.calendar.give_back(hold.slot.id, at)
        self.ctx.ledger.record("hold_expired", hold.id, hold.email, slot_id=hold.slot.id)

    def confirm(self, hold: Hold) -> tuple[Booking, bool]:
        """Book a paid hold; (booking, created). A second confirm returns the first booking."""
        if hold.booking is not None:
            return hold.booking, False
        assert hold.payment_id is not None
        booking = Booking(
            reference=self.new_reference(),
            email=hold.email,
            hold_id=hold.id,
            slot_id=hold.slot.id,
            center=hold.slot.center,
            visa=hold.slot.visa,
            when=hold.slot.when_text,
            client_reference=hold.client_reference,
            payment_id=hold.payment_id,
        )
        hold.booking = booking
        hold.state = "confirmed"
        self._active.pop(hold.id, None)
        self.bookings.append(booking)
        self.calendar.book(hold.slot.id)
        self.ctx.ledger.record(
            "booking",
            hold.booking_key,
            hold.email,
            reference=booking.reference,
            hold_id=hold.id,
            slot_id=hold.slot.id,
            payment_id=hold.payment_id,
        )
        return booking, True


def _default_accounts() -> list[dict[str, str]]:
    return [{"email": f"user{n}@example.test", "password": f"pw-{n}"} for n in range(1, 201)]
