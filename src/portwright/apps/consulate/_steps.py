"""The consulate adapter's steps: every call to the portal, each one checkpointed.

Steps read pages only through the selector map, so a markup change surfaces as
PageChangedError naming the selector (and the page is kept as evidence), and an
operator's selector patch fixes every later attempt.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from portwright.sdk import Page, PermanentError, StepContext, TransientError

__all__ = [
    "confirm",
    "hold_slot",
    "inbox_cursor",
    "login",
    "pay",
    "payment_status",
    "read_inbox_code",
    "scan",
    "submit_code",
]


def _error(page: Page) -> str:
    return page.values("error")[0] if page.has("error") else ""


async def _csrf(sc: StepContext, base: str, path: str) -> tuple[Page, str]:
    page = sc.page(await sc.http.get(urljoin(base, path)))
    return page, page.value("csrf")


async def login(sc: StepContext, base: str, email: str, credential: str) -> str:
    """Sign in (solving a captcha if one is shown). Returns "ok" or "unknown_account"."""
    page, csrf = await _csrf(sc, base, "/login")
    form: dict[str, str] = {"email": email, "password": await sc.secret(credential), "csrf": csrf}
    if page.has("captcha"):
        sitekey = page.value("captcha_sitekey")
        form["captcha_id"] = page.value("captcha_id")
        form["captcha_answer"] = await sc.solve_captcha(sitekey=sitekey, url=page.url)
    response = sc.check(await sc.http.post(urljoin(base, "/login"), data=form))
    after = Page(response.text, sc.selectors, url=str(response.url))
    if "/login" not in response.url.path:
        return "ok"
    error = _error(after)
    if error == "unknown account":
        return "unknown_account"
    if error in ("captcha wrong", "captcha required"):
        raise TransientError(f"login refused: {error}")
    raise PermanentError(f"login refused: {error or 'no reason shown'}")


async def scan(sc: StepContext, base: str, center: str, visa: str) -> dict[str, Any]:
    """Look at the calendar; record what was seen. Returns {"slots": [...], "logged_out": bool}."""
    response = await sc.http.get(
        urljoin(base, "/appointments"), params={"center": center, "visa": visa}
    )
    if "/login" in response.url.path:
        return {"slots": [], "logged_out": True}
    page = sc.page(response)
    slots = page.values("slot_ids")
    if not slots and not page.has("no_slots"):
        page.one("slot_ids")  # neither slots nor the empty marker: the page changed
    seen: dict[str, Any] = {"open": len(slots), "ids": slots[:50], "center": center}
    seen["visa_type"] = visa
    if page.has("portal_time"):  # the portal's own clock, when it shows one
        try:
            seen["at"] = float(page.value("portal_time"))
        except ValueError:
            sc.log.warning("unreadable portal time; the observation takes ours")
    await sc.observe("slots", f"{center}/{visa}", seen)
    return {"slots": slots, "logged_out": False}


async def hold_slot(
    sc: StepContext, base: str, center: str, visa: str, slot_id: str, reference: str
) -> dict[str, Any]:
    """Hold a slot for this booking. Returns {"hold_id", "expires_in"} or {"taken": True}."""
    _, csrf = await _csrf(sc, base, f"/appointments?center={center}&visa={visa}")
    response = await sc.http.post(
        urljoin(base, "/appointments/hold"),
        data={"slot_id": slot_id, "csrf": csrf, "client_reference": reference},
    )
    if response.status_code in (404, 409):
        return {"taken": True}
    page = sc.page(response)
    return {"hold_id": page.value("hold_id"), "expires_in": float(page.value("hold_expires_in"))}


async def read_inbox_code(
    sc: StepContext, inbox: str, email: str, after_seq: int
) -> dict[str, Any]:
    """The newest one-time code sent to `email` after message `after_seq`; transient if none."""
    response = sc.check(
        await sc.http.get(urljoin(inbox, "/messages"), params={"to": email, "since_seq": after_seq})
    )
    codes = [m for m in response.json() if m.get("code")]
    if not codes:
        raise TransientError("no one-time code in the inbox yet")
    return {"code": codes[-1]["code"], "seq": codes[-1]["seq"]}


async def inbox_cursor(sc: StepContext, inbox: str, email: str) -> int:
    response = sc.check(await sc.http.get(urljoin(inbox, "/messages"), params={"to": email}))
    seqs = [int(m["seq"]) for m in response.json()]
    return max(seqs, default=0)


async def submit_code(sc: StepContext, base: str, hold_id: str, code: str) -> dict[str, Any]:
    """Enter the one-time code. Returns {"payment_id"} | {"wrong": True} | {"expired": True}."""
    _, csrf = await _csrf(sc, base, f"/appointments/hold/{hold_id}")
    response = await sc.http.post(
        urljoin(base, f"/appointments/hold/{hold_id}/otp"), data={"code": code, "csrf": csrf}
    )
    if response.status_code == 400:
        return {"wrong": True}
    if response.status_code == 410:
        return {"expired": True}
    return {"payment_id": sc.page(response).value("payment_id")}


async def pay(sc: StepContext, base: str, payment_id: str, card_number: str) -> dict[str, Any]:
    """Submit the card. Returns {"status": "pending"} | {"expired": True}."""
    page, csrf = await _csrf(sc, base, f"/payments/{payment_id}")
    status = page.value("payment_status")
    if status in ("pending", "succeeded"):
        return {"status": status}  # already paid (a re-run after a crash)
    response = await sc.http.post(
        urljoin(base, f"/payments/{payment_id}/pay"),
        data={"card_number": card_number, "csrf": csrf},
    )
    if response.status_code == 410:
        return {"expired": True}
    if response.status_code == 400:
        raise PermanentError(f"payment refused: {_error(Page(response.text, sc.selectors))}")
    sc.check(response)
    return {"status": "pending"}


async def payment_status(sc: StepContext, base: str, payment_id: str) -> str:
    """The payment's status; TransientError while it is still pending."""
    status = sc.page(await sc.http.get(urljoin(base, f"/payments/{payment_id}"))).value(
        "payment_status"
    )
    if status == "pending":
        raise TransientError("payment still pending")
    return status


async def confirm(sc: StepContext, base: str, hold_id: str, reference: str) -> dict[str, Any]:
    """Confirm the booking, checking first that this request was not already booked."""
    existing = await sc.http.get(urljoin(base, "/bookings"), params={"client_reference": reference})
    page = sc.page(existing)
    booked = page.values("booking_reference")
    if booked:
        sc.log.info("booking already confirmed; not submitting again", reference=booked[0])
        return {"reference": booked[0], "resubmitted": False}
    _, csrf = await _csrf(sc, base, f"/appointments/hold/{hold_id}")
    response = await sc.http.post(
        urljoin(base, "/appointments/confirm"), data={"hold_id": hold_id, "csrf": csrf}
    )
    if response.status_code == 410:
        return {"expired": True}
    if response.status_code == 409:
        raise TransientError("payment still pending at the portal")
    if response.status_code == 402:
        raise PermanentError("the portal says the booking is not paid")
    return {"reference": sc.page(response).value("reference"), "resubmitted": True}
