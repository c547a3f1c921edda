"""`scrape-captcha`: the catalogue behind the sandbox captcha (`portwright.sandbox.captcha`).

A request without a valid `captcha_pass` cookie is gated with chance
`captcha_rate` (a knob; 1.0 by default, so always): it gets a 403 page with
`form#captcha-form` (POST `/captcha/verify`) holding the challenge
(`div.captcha[data-sitekey]`, hidden `captcha_id`, text `captcha_answer`) and a
hidden `next`. A correct answer sets `captcha_pass` for `access_minutes`
(option, default 10) and redirects (303) to `next`; a wrong one gets the form
again, 403, with `p.error.captcha-wrong` and a fresh challenge. Each
challenge can be answered once.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from html import escape
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from portwright.sandbox import captcha
from portwright.sandbox._chaos import ChaosKnobs, identity_of_scope
from portwright.sandbox._world import ServiceContext, ServiceSpec
from portwright.sandbox.scrape._catalog import Catalog
from portwright.sandbox.scrape._content import catalogue_routes
from portwright.sandbox.scrape._ratelimit import RateLimitMiddleware, TokenBuckets
from portwright.sandbox.scrape._render import layout

__all__ = ["PASS_COOKIE", "CaptchaGate", "build_captcha_site", "captcha_site_spec"]

PASS_COOKIE = "captcha_pass"
VERIFY_PATH = "/captcha/verify"
_MAX_OPEN = 10_000


class CaptchaGate:
    """Pure ASGI middleware: the captcha wall, its verify endpoint, and the pass cookie."""

    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx
        self.secret = hashlib.sha256(f"scrape-captcha|pass|{ctx.seed}".encode()).digest()
        self._lock = threading.Lock()
        self._open: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if scope["path"] == VERIFY_PATH and scope["method"] == "POST":
            response = await self.verify(request)
        elif self.pass_ok(request.cookies.get(PASS_COOKIE, "")):
            await self.app(scope, receive, send)
            return
        else:
            identity = identity_of_scope(scope)
            rate = self.ctx.chaos.knobs.captcha_rate
            if not self.ctx.chaos.chance(rate, f"gate|{identity}"):
                await self.app(scope, receive, send)
                return
            target = scope["path"] + (f"?{request.url.query}" if request.url.query else "")
            response = self.wall(identity, target, wrong=False)
        await response(scope, receive, send)

    def _sign(self, expires: str) -> str:
        return hmac.new(self.secret, expires.encode(), hashlib.sha256).hexdigest()[:24]

    def pass_ok(self, value: str) -> bool:
        """Whether a `captcha_pass` cookie is ours and not yet expired."""
        expires, _, mac = value.partition("-")
        try:
            deadline = int(expires, 16)
        except ValueError:
            return False
        return hmac.compare_digest(mac, self._sign(expires)) and time.time() < deadline

    def wall(self, identity: str, target: str, *, wrong: bool) -> HTMLResponse:
        """The 403 captcha page for `target`, with a fresh single-use challenge."""
        challenge = captcha.new_challenge(self.ctx, key=f"scrape|{identity}")
        with self._lock:
            self._open[challenge.id] = None
            while len(self._open) > _MAX_OPEN:
                self._open.popitem(last=False)
        error = (
            '<p class="error captcha-wrong">That was not right. Please try again.</p>'
            if wrong
            else ""
        )
        body = (
            '<h1 id="captcha-required">Please confirm you are a person</h1>'
            f"{error}"
            f'<form id="captcha-form" method="post" action="{VERIFY_PATH}">'
            f'<input type="hidden" name="next" value="{escape(target)}">'
            f"{captcha.render_challenge_html(challenge)}"
            '<button type="submit" id="captcha-submit">Continue</button></form>'
        )
        return HTMLResponse(
            layout("Please confirm you are a person", body),
            status_code=403,
            headers={"cache-control": "no-store"},
        )

    async def verify(self, request: Request) -> Response:
        """Check an answer: a pass cookie and a redirect, or the wall again."""
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))

        def field(name: str) -> str:
            return fields.get(name, [""])[0].strip()

        target = field("next")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        captcha_id = field("captcha_id")
        with self._lock:
            issued = captcha_id in self._open
            self._open.pop(captcha_id, None)
        if not issued or not captcha.verify(self.ctx, captcha_id, field("captcha_answer")):
            return self.wall(identity_of_scope(request.scope), target, wrong=True)
        minutes = float(self.ctx.options.get("access_minutes") or 10)
        expires = f"{int(time.time() + minutes * 60):x}"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            PASS_COOKIE,
            f"{expires}-{self._sign(expires)}",
            max_age=int(minutes * 60),
            path="/",
            httponly=True,
            samesite="lax",
        )
        return response


def build_captcha_site(ctx: ServiceContext) -> ASGIApp:
    """The catalogue behind `CaptchaGate` (and the optional per-identity limit)."""
    catalog = Catalog(ctx.chaos.draw, int(ctx.options.get("products", 1000)))
    app = Starlette(routes=catalogue_routes(catalog, ctx.options, "Sandbox captcha catalogue"))
    return RateLimitMiddleware(CaptchaGate(app, ctx), TokenBuckets(ctx.options))


def captcha_site_spec() -> ServiceSpec:
    """1,000 products behind a captcha wall; a solved captcha opens the site for 10 minutes."""
    return ServiceSpec(
        "scrape-captcha",
        build_captcha_site,
        knobs=ChaosKnobs(captcha_rate=1.0),
        options={"products": 1000, "page_size": 50, "access_minutes": 10, "rate_per_s": 0},
    )
