"""Sandbox library room booking: the portal docs/tutorial-first-adapter.md is written against.

A reader logs in, books a room for a date and an hour, and gets a booking reference.

- `POST /login` (form `user`, `password`; users from option `users`): 303 to `/rooms` with
  the `library_session` cookie; a wrong password is 401 (`p.error#login-error`), a missing
  field 400.
- `GET /rooms`: the rooms (option `rooms`) and hours (option `hours`); without a session,
  303 to `/login` (so does every page below).
- `POST /bookings` (form `room`, `date` YYYY-MM-DD, `slot` HH:MM): 303 to
  `/bookings/{ref}`; an unknown room is 404, a bad date or hour 400
  (`p.error[data-field]`), a slot another reader holds 409 (`p.error.taken`). The same
  reader booking the same slot again is sent to the booking they hold (safe to retry).
- `GET /bookings/{ref}`: the confirmation, `#booking-ref` (DOM v1) or `strong.ref` (DOM v2,
  the `dom_version` knob); another reader's booking is 404.

Chaos: a 429 on a twentieth of requests (Retry-After 1 s) by default.
Ledger: kind "booking" keyed `"<room>|<date>|<slot>"`; refused ones as "taken".
"""

from __future__ import annotations

from portwright.sandbox._chaos import ChaosKnobs
from portwright.sandbox._world import ServiceSpec
from portwright.sandbox.library._app import COOKIE, build_library

__all__ = ["COOKIE", "build_library", "specs"]

USERS = {"reader": "open-sesame", "other": "letmein"}  # sandbox readers, not secrets
ROOMS = ("A", "B", "C")
HOURS = ("09:00", "10:00", "11:00", "14:00", "15:00")


def specs() -> list[ServiceSpec]:
    """The "library" service: three rooms, five hours a day, an occasional 429."""
    return [
        ServiceSpec(
            "library",
            build_library,
            knobs=ChaosKnobs(rate_429=0.05, retry_after_s=1.0),
            options={"users": dict(USERS), "rooms": list(ROOMS), "hours": list(HOURS)},
        )
    ]
