"""The sandbox consulate: scenario 1's appointment portal (service "consulate").

Server-rendered HTML, a cookie session (`cns_session`), plain forms that work
from httpx and from Chromium alike. Every POST except `/register` and the
payment pages carries the session's CSRF token (form field `csrf`, or header
`X-CSRF-Token`). Errors render `.error` with a fixed text.

    GET  /login                          form#login-form (v2: form#auth-form): email, password,
                                         csrf, next; with probability knobs.captcha_rate a
                                         div.captcha[data-sitekey] (captcha_id, captcha_answer)
    POST /login                          303 -> next (default /appointments) + session cookie;
                                         200 "invalid credentials" | "unknown account" |
                                         "captcha required" | "captcha wrong";
                                         400 "invalid csrf token"
    GET|POST /register                   email, password -> 201 h1#registered[data-email];
                                         409 "account exists"; 400 "invalid email" |
                                         "password too short"
    GET  /appointments?center=&visa=     the open slots of a pair; v1 form#hold-form with
                                         input[name=csrf] and table#slots tr.slot[data-slot-id]
                                         td.date; v2 meta[name=csrf-token], form#slot-reservation
                                         and ul.slot-list li.slot-item[data-id] span.when;
                                         p.no-slots when empty; 400 "unknown center" |
                                         "unknown visa type"
    POST /appointments/hold              slot_id, csrf, client_reference -> 200 #hold[data-hold-id]
                                         #hold-expires[data-expires-at][data-expires-in]
                                         form#otp-form; code sent to the inbox;
                                         409 "slot taken"; 404 "unknown slot"
    GET  /appointments/hold/{id}         the hold's current page (410 "hold expired")
    POST /appointments/hold/{id}/otp     code, csrf -> 200 payment page; 400 "wrong code";
                                         410 "hold expired"
    POST /appointments/hold/{id}/resend  csrf -> a new code
    GET  /payments/{id}                  #payment[data-payment-id][data-amount][data-currency],
                                         #payment-status: requires_payment | pending |
                                         succeeded | failed; form#pay-form; form#confirm-form
    POST /payments/{id}/pay              card_number -> 202 (pending); 400 "invalid card
                                         number"; 410 "hold expired"; then a signed webhook
    POST /appointments/confirm           hold_id, csrf -> 200 #confirmation[data-reference];
                                         402 "payment required"; 409 "payment pending";
                                         410 "hold expired"; twice -> the same reference
    GET  /bookings?client_reference=     li.booking[data-reference][data-client-reference]
                                         or p.no-bookings
    POST /logout

Unauthenticated GETs redirect (303) to /login?next=…; POSTs answer 401 "login
required". Ledger kinds: "hold", "hold_expired", "payment", "payment_declined",
"booking" (key = client_reference, or "hold:<id>" without one), "webhook",
"account". Options: see `DEFAULT_OPTIONS`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from portwright.sandbox._chaos import ChaosKnobs
from portwright.sandbox._world import ServiceSpec
from portwright.sandbox.consulate._app import build_app
from portwright.sandbox.consulate._calendar import Release, Slot, SlotCalendar
from portwright.sandbox.consulate._portal import DECLINED_CARDS, DEFAULT_OPTIONS, Portal
from portwright.sandbox.consulate._web import SESSION_COOKIE
from portwright.sandbox.consulate._webhook import sign

__all__ = [
    "DECLINED_CARDS",
    "DEFAULT_OPTIONS",
    "SESSION_COOKIE",
    "Portal",
    "Release",
    "Slot",
    "SlotCalendar",
    "build_app",
    "sign",
    "specs",
]


def specs(
    options: Mapping[str, Any] | None = None, knobs: ChaosKnobs | None = None
) -> list[ServiceSpec]:
    """The consulate service; `options` override `DEFAULT_OPTIONS` key by key."""
    merged = copy.deepcopy(DEFAULT_OPTIONS) | dict(options or {})
    return [ServiceSpec("consulate", build_app, knobs=knobs or ChaosKnobs(), options=merged)]
