"""Example adapter: scenario 1's appointment booking on the sandbox consulate portal.

A booking logs in (solving a captcha through the solver chain if shown),
scans the calendar until a slot appears (every scan is an observation), holds
it, relays the one-time code (from the user through the API, or read from the
sandbox inbox), pays, waits for the payment webhook (or polls), and confirms —
checking first that this request was not booked already, so a crash at the
submit step never books twice. Input `payment` arrives from the gateway's
payment webhook; input `otp` from the user; input `signup` when the user has
registered an account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from portwright.apps.consulate import _steps as steps
from portwright.apps.consulate._machine import BOOKING
from portwright.sdk import (
    Adapter,
    InputTimeoutError,
    Job,
    PermanentError,
    RetryPolicy,
    TransientError,
)

__all__ = ["BOOKING", "BookingInput", "ConsulateAdapter"]


class BookingInput(BaseModel):
    """One appointment request."""

    portal_url: str = Field(description="base URL of the consulate portal")
    account_email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    credential: str | None = Field(
        None, description="name of the stored credential (password); default: the email"
    )
    center: str = Field(min_length=1, max_length=16)
    visa_type: str = Field(min_length=1, max_length=32)
    card_number: str = Field(
        "4242424242424242", pattern=r"^\d{12,19}$", description="sandbox test card"
    )
    watch: bool = Field(
        False,
        description="wait for the portal's shared watch job to hand over a slot (input "
        "'slot') instead of scanning on its own",
    )
    otp_source: Literal["user", "inbox"] = "user"
    inbox_url: str | None = None
    deadline_s: float = Field(3600.0, gt=0, description="give up scanning after this (EXPIRED)")
    scan_interval_s: float = Field(2.0, gt=0)
    otp_timeout_s: float = Field(90.0, gt=0)
    payment_wait_s: float = Field(5.0, gt=0, description="wait for the webhook, then poll")
    signup_timeout_s: float = Field(86400.0, gt=0)


class ConsulateAdapter(Adapter[BookingInput]):
    name: ClassVar[str] = "consulate"
    version: ClassVar[str] = "1.0"
    input_model = BookingInput
    machine = BOOKING
    inputs: ClassVar[frozenset[str]] = frozenset({"otp", "payment", "signup", "slot"})
    max_concurrency: ClassVar[int] = 8
    retry = RetryPolicy(max_attempts=8, base_delay_s=0.5, max_delay_s=10.0, degraded_after=4)
    selectors: ClassVar[Mapping[str, str]] = {
        "csrf": "input[name=csrf]::attr(value)",
        "error": ".error::text",
        "captcha": "div.captcha[data-sitekey]",
        "captcha_sitekey": "div.captcha::attr(data-sitekey)",
        "captcha_id": "input[name=captcha_id]::attr(value)",
        "slot_ids": "table#slots tr.slot::attr(data-slot-id)",
        "no_slots": "p.no-slots",
        "portal_time": "#portal-clock::attr(data-now)",
        "hold_id": "#hold::attr(data-hold-id)",
        "hold_expires_in": "#hold-expires::attr(data-expires-in)",
        "payment_id": "#payment::attr(data-payment-id)",
        "payment_status": "#payment-status::text",
        "reference": "#confirmation::attr(data-reference)",
        "booking_reference": "li.booking::attr(data-reference)",
    }

    def lock_key(self, data: BookingInput) -> str | None:
        return f"consulate-account:{data.account_email.lower()}"

    def watch_key(self, data: BookingInput) -> tuple[str, str] | None:
        return (data.center, data.visa_type) if data.watch else None

    async def run(self, job: Job[BookingInput]) -> Mapping[str, Any]:
        data = job.input
        base = data.portal_url
        await job.transition("VALIDATING")
        if data.otp_source == "inbox" and not data.inbox_url:
            raise PermanentError("otp_source 'inbox' needs inbox_url")
        await job.transition("QUEUED")
        await self._login(job)
        deadline = await job.now() + data.deadline_s
        while True:
            slot = await self._scan_until_found(job, deadline)
            if slot is None:
                await job.transition("EXPIRED", f"no slot within {data.deadline_s:g}s")
                return {}
            await job.transition("SLOT_FOUND", slot_id=slot)
            await job.transition("HOLDING", slot_id=slot)
            hold = await job.step(
                "hold", steps.hold_slot, base, data.center, data.visa_type, slot, job.id
            )
            if hold.get("taken"):
                await job.transition("SCANNING", "slot taken by someone else", slot_id=slot)
                continue
            hold_id = str(hold["hold_id"])
            code_result = await self._one_time_code(job, hold_id, float(hold["expires_in"]))
            if code_result is None:
                continue
            payment_id = code_result
            outcome = await self._pay(job, payment_id)
            if outcome == "expired":
                await job.transition("SCANNING", "hold expired during payment; slot released")
                continue
            await job.transition("CONFIRMING")
            confirmed = await job.step("confirm", steps.confirm, base, hold_id, job.id)
            if confirmed.get("expired"):
                await job.transition("SCANNING", "hold expired before confirmation")
                continue
            return {"reference": confirmed["reference"], "hold_id": hold_id, "slot_id": slot}

    async def _login(self, job: Job[BookingInput]) -> None:
        data = job.input
        while True:
            await job.transition("LOGGING_IN")
            result = await job.step(
                "login",
                steps.login,
                data.portal_url,
                data.account_email,
                data.credential or data.account_email,
            )
            if result == "ok":
                return
            await job.transition("AWAITING_USER_SIGNUP", "the portal has no account for this email")
            try:
                await job.wait_for_input("signup", data.signup_timeout_s)
            except InputTimeoutError:
                await job.transition("EXPIRED", "the user never signed up")
                raise
            await job.transition("VALIDATING", "user reports the account exists")
            await job.transition("QUEUED")

    async def _scan_until_found(self, job: Job[BookingInput], deadline: float) -> str | None:
        data = job.input
        if job.state != "SCANNING":
            await job.transition("SCANNING", f"{data.center}/{data.visa_type}")
        if data.watch:
            return await self._wait_for_watcher(job, deadline)
        while True:
            seen = await job.step("scan", steps.scan, data.portal_url, data.center, data.visa_type)
            if seen["logged_out"]:
                await job.transition("LOGGING_IN", "session expired")
                await job.step(
                    "login",
                    steps.login,
                    data.portal_url,
                    data.account_email,
                    data.credential or data.account_email,
                )
                await job.transition("SCANNING", "signed in again")
                continue
            if seen["slots"]:
                return str(seen["slots"][0])
            if await job.now() > deadline:
                return None
            await job.sleep(data.scan_interval_s)

    async def _wait_for_watcher(self, job: Job[BookingInput], deadline: float) -> str | None:
        """Wait (durably) until the key's watch job hands over a slot, or the deadline."""
        data = job.input
        while True:
            remaining = deadline - await job.now()
            if remaining <= 0:
                return None
            try:
                handed = await job.wait_for_input(
                    "slot", remaining, reason=f"watching {data.center}/{data.visa_type}"
                )
            except InputTimeoutError:
                return None
            slot = handed.get("slot_id") if isinstance(handed, dict) else handed
            if isinstance(slot, str) and 0 < len(slot) <= 200:
                return slot
            job.log.warning("ignored a malformed slot hand-off", value=str(handed)[:200])

    async def _one_time_code(
        self, job: Job[BookingInput], hold_id: str, expires_in: float
    ) -> str | None:
        """Get the code to the portal; returns the payment id, or None if the hold was lost."""
        data = job.input
        budget = min(data.otp_timeout_s, max(1.0, expires_in - 2.0))
        cursor = 0
        for _ in range(3):
            try:
                if data.otp_source == "inbox":
                    assert data.inbox_url is not None
                    await job.transition("OTP_REQUIRED", "code sent to the inbox", hold_id=hold_id)
                    found = await job.step(
                        "read_code",
                        steps.read_inbox_code,
                        data.inbox_url,
                        data.account_email,
                        cursor,
                    )
                    code, cursor = str(found["code"]), int(found["seq"])
                else:
                    code = str(
                        await job.ask_customer(
                            "otp",
                            "Enter the one-time code the portal just sent you",
                            budget,
                            state="OTP_REQUIRED",
                            kind="code",
                        )
                    ).strip()
            except InputTimeoutError:
                await job.transition(
                    "SCANNING",
                    "no code before the hold expired; slot released",
                    hold_id=hold_id,
                    notify="hold_expired",
                )
                return None
            await job.transition("OTP_SUBMITTED", hold_id=hold_id)
            result = await job.step(
                "submit_code", steps.submit_code, data.portal_url, hold_id, code
            )
            if result.get("payment_id"):
                await job.transition("PAYMENT_REQUIRED", payment_id=result["payment_id"])
                return str(result["payment_id"])
            if result.get("expired"):
                await job.transition(
                    "SCANNING",
                    "hold expired; slot released",
                    hold_id=hold_id,
                    notify="hold_expired",
                )
                return None
        await job.transition("SCANNING", "three wrong codes; hold abandoned", hold_id=hold_id)
        return None

    async def _pay(self, job: Job[BookingInput], payment_id: str) -> str:
        data = job.input
        paid = await job.step("pay", steps.pay, data.portal_url, payment_id, data.card_number)
        if paid.get("expired"):
            return "expired"
        try:
            event = await job.wait_for_input(
                "payment",
                data.payment_wait_s,
                state="PAYMENT_PENDING",
                reason="waiting for the payment webhook",
            )
            status = str(event.get("status", "")) if isinstance(event, dict) else str(event)
        except InputTimeoutError:
            status = ""
        if status not in ("succeeded", "failed"):
            try:
                status = await job.step(
                    "payment_status", steps.payment_status, data.portal_url, payment_id
                )
            except TransientError as exc:
                raise PermanentError(f"payment never settled: {exc}") from exc
        if status == "failed":
            raise PermanentError("payment declined")
        return status
