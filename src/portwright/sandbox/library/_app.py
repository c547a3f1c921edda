"""The library portal's routes (see the package docstring for the pages and statuses)."""

from __future__ import annotations

import html
import re
import secrets

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from portwright.sandbox._chaos import identity_of_scope
from portwright.sandbox._world import ServiceContext

__all__ = ["COOKIE", "build_library"]

COOKIE = "library_session"
DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (
        f"<!doctype html><html><head><title>{html.escape(title)} - Library</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(text, status_code=status, headers={"cache-control": "no-store"})


def _error(title: str, message: str, status: int, css: str, field: str = "") -> HTMLResponse:
    where = f' data-field="{html.escape(field)}"' if field else ""
    return _page(title, f'<p class="error {css}"{where}>{html.escape(message)}</p>', status)


class Library:
    """Sessions and bookings of one sandbox world's library."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.sessions: dict[str, str] = {}  # token -> user
        self.bookings: dict[str, tuple[str, str, str, str]] = {}  # ref -> (user, room, date, slot)
        self.held: dict[tuple[str, str, str], str] = {}  # (room, date, slot) -> ref

    def user_of(self, request: Request) -> str | None:
        return self.sessions.get(request.cookies.get(COOKIE, ""))

    async def home(self, _: Request) -> Response:
        return RedirectResponse("/login", status_code=303)

    async def login_form(self, _: Request) -> Response:
        return _page(
            "Log in",
            '<form id="login" method="post" action="/login">'
            '<input name="user"><input name="password" type="password">'
            '<button type="submit">Log in</button></form>',
        )

    async def login(self, request: Request) -> Response:
        form = await request.form()
        user, password = str(form.get("user", "")), str(form.get("password", ""))
        if not user or not password:
            missing = "user" if not user else "password"
            return _error("Log in", f"{missing} is required", 400, "missing", missing)
        users: dict[str, str] = self.ctx.options.get("users", {})
        if users.get(user) is None or not secrets.compare_digest(users[user], password):
            return _page(
                "Log in", '<p class="error" id="login-error">Wrong user or password</p>', 401
            )
        token = secrets.token_urlsafe(16)
        self.sessions[token] = user
        response = RedirectResponse("/rooms", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="lax")
        return response

    async def rooms(self, request: Request) -> Response:
        user = self.user_of(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        items = "".join(
            f'<li class="room" data-room="{html.escape(room)}">Room {html.escape(room)}</li>'
            for room in self.ctx.options.get("rooms", [])
        )
        hours = "".join(
            f'<li class="hour">{html.escape(h)}</li>' for h in self.ctx.options.get("hours", [])
        )
        return _page(
            "Rooms",
            f'<p id="reader">{html.escape(user)}</p><ul id="rooms">{items}</ul>'
            f'<ul id="hours">{hours}</ul>',
        )

    async def book(self, request: Request) -> Response:
        user = self.user_of(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        form = await request.form()
        room, date, slot = (str(form.get(k, "")) for k in ("room", "date", "slot"))
        if room not in self.ctx.options.get("rooms", []):
            return _error("Booking", f"no room {room!r}", 404, "unknown-room", "room")
        if not DATE.match(date):
            return _error("Booking", "date must be YYYY-MM-DD", 400, "invalid", "date")
        if slot not in self.ctx.options.get("hours", []):
            return _error("Booking", f"no slot {slot!r}", 400, "invalid", "slot")
        key = (room, date, slot)
        ref = self.held.get(key)
        if ref is not None and self.bookings[ref][0] != user:
            self.ctx.ledger.record("taken", "|".join(key), user)
            return _error("Booking", f"room {room} is taken on {date} at {slot}", 409, "taken")
        if ref is None:  # a repeat by the holder is sent to the booking they hold
            ref = f"LIB-{len(self.bookings) + 1:04d}"
            self.bookings[ref] = (user, *key)
            self.held[key] = ref
            actor = identity_of_scope(request.scope)
            self.ctx.ledger.record("booking", "|".join(key), actor, user=user, ref=ref)
        return RedirectResponse(f"/bookings/{ref}", status_code=303)

    async def booking(self, request: Request) -> Response:
        user = self.user_of(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        ref = str(request.path_params["ref"])
        held = self.bookings.get(ref)
        if held is None or held[0] != user:
            return _error("Booking", f"no booking {ref}", 404, "not-found")
        _, room, date, slot = held
        what = f"Room {room}, {date} at {slot}"
        if self.ctx.chaos.knobs.dom_version == 1:
            body = f'<p>Booked: <span id="booking-ref">{ref}</span></p><p>{html.escape(what)}</p>'
        else:
            body = (
                f'<section class="confirmation"><p>Reference <strong class="ref">{ref}</strong>'
                f"</p><p>{html.escape(what)}</p></section>"
            )
        return _page("Booking confirmed", body)


def build_library(ctx: ServiceContext) -> Starlette:
    library = Library(ctx)
    return Starlette(
        routes=[
            Route("/", library.home),
            Route("/login", library.login_form, methods=["GET"]),
            Route("/login", library.login, methods=["POST"]),
            Route("/rooms", library.rooms),
            Route("/bookings", library.book, methods=["POST"]),
            Route("/bookings/{ref}", library.booking),
        ]
    )
