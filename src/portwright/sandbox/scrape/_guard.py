"""`scrape-guarded`: the sandbox's own browser check, in front of the catalogue.

This is a check of our own making (no vendor's scheme is imitated). A request
passes when both hold:

1. Its headers look like a browser's navigation: a `Mozilla/5.0` user agent
   naming no HTTP library, `Accept` with `text/html`, a non-empty
   `Accept-Language`, and `Sec-Fetch-Mode` / `Sec-Fetch-Dest`. Otherwise: 403
   with the block page (`#blocked[data-reason=headers]`).
2. It carries the `pw_guard` cookie computed by script. Without it (or with a
   stale or forged one) the answer is a 403 challenge page (`#challenge`)
   whose inline script computes the cookie from the page's nonce and reloads.
   A tab challenged again within 5 s of its last try stops there
   (`#challenge[data-state=failed]`) instead of reloading in a loop.

Option `guard_ttl_s` (default 900) bounds the cookie's life. Option
`reject_automation` (default false) also refuses `HeadlessChrome` user agents
and browsers reporting `navigator.webdriver`, for testing a hardened engine.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from portwright.sandbox._world import ServiceContext, ServiceSpec
from portwright.sandbox.scrape._catalog import Catalog
from portwright.sandbox.scrape._content import catalogue_routes
from portwright.sandbox.scrape._ratelimit import RateLimitMiddleware, TokenBuckets
from portwright.sandbox.scrape._render import blocked_page, layout

__all__ = ["COOKIE", "BrowserGuard", "build_guarded", "guarded_spec", "solve"]

COOKIE = "pw_guard"
ROUNDS = 200
_MODULUS = 1_000_000_007
_LIBRARY_AGENTS = (
    "python",
    "httpx",
    "aiohttp",
    "curl",
    "wget",
    "go-http",
    "okhttp",
    "java/",
    "scrapy",
    "libwww",
)

_CHALLENGE_SCRIPT = """
(function () {
  var box = document.getElementById("challenge"), last = 0;
  try { last = +(sessionStorage.getItem("pw_guard_at") || 0); } catch (e) {}
  if (Date.now() - last < 5000) { box.setAttribute("data-state", "failed"); return; }
  var n = "%(nonce)s", h = 0;
  for (var r = 0; r < %(rounds)d; r++) {
    for (var i = 0; i < n.length; i++) { h = (h * 31 + n.charCodeAt(i) + r) %% %(mod)d; }
  }
  var w = navigator.webdriver ? 1 : 0;
  document.cookie =
    "%(cookie)s=" + n + "." + h + "." + w + "; path=/; max-age=%(ttl)d; SameSite=Lax";
  if (document.cookie.indexOf("%(cookie)s=") < 0) {
    box.setAttribute("data-state", "no-cookies");
    return;
  }
  try { sessionStorage.setItem("pw_guard_at", String(Date.now())); } catch (e) {}
  location.reload();
})();
"""


@functools.lru_cache(maxsize=4096)
def solve(nonce: str, rounds: int = ROUNDS) -> int:
    """The value the challenge script computes for `nonce` (the server checks the same)."""
    h = 0
    for r in range(rounds):
        for ch in nonce:
            h = (h * 31 + ord(ch) + r) % _MODULUS
    return h


def _cookie_value(raw: str) -> str:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return ""
    morsel = jar.get(COOKIE)
    return "" if morsel is None else morsel.value


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class BrowserGuard:
    """Pure ASGI middleware: block non-browser headers, challenge until the JS cookie is set."""

    def __init__(self, app: ASGIApp, secret: bytes, options: Mapping[str, Any]) -> None:
        self.app = app
        self.secret = secret
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        agent = headers.get("user-agent", "")
        reason = self._header_problem(headers, agent)
        if reason is not None:
            await _html(send, 403, blocked_page(reason))
            return
        if self._cookie_ok(headers.get("cookie", ""), agent):
            await self.app(scope, receive, send)
            return
        await _html(send, 403, self._challenge(agent))

    def _strict(self) -> bool:
        return bool(self.options.get("reject_automation"))

    def _header_problem(self, headers: Mapping[str, str], agent: str) -> str | None:
        lowered = agent.lower()
        if not agent.startswith("Mozilla/5.0") or any(t in lowered for t in _LIBRARY_AGENTS):
            return "headers"
        if "text/html" not in headers.get("accept", "") or not headers.get("accept-language"):
            return "headers"
        if not headers.get("sec-fetch-mode") or not headers.get("sec-fetch-dest"):
            return "headers"
        if self._strict() and "headless" in lowered:
            return "automation"
        return None

    def _ttl(self) -> int:
        return int(self.options.get("guard_ttl_s") or 900)

    def _mac(self, issued: str, agent: str) -> str:
        msg = f"{issued}|{agent}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()[:16]

    def _nonce(self, agent: str) -> str:
        issued = f"{int(time.time()):x}"
        return f"{issued}-{self._mac(issued, agent)}"

    def _cookie_ok(self, raw: str, agent: str) -> bool:
        parts = _cookie_value(raw).split(".")
        if len(parts) != 3:
            return False
        nonce, answer, webdriver = parts
        if self._strict() and webdriver != "0":
            return False
        return self._nonce_ok(nonce, agent) and answer == str(solve(nonce))

    def _nonce_ok(self, nonce: str, agent: str) -> bool:
        issued, _, mac = nonce.partition("-")
        try:
            age = time.time() - int(issued, 16)
        except ValueError:
            return False
        return hmac.compare_digest(mac, self._mac(issued, agent)) and 0 <= age <= self._ttl()

    def _challenge(self, agent: str) -> str:
        script = _CHALLENGE_SCRIPT % {
            "nonce": self._nonce(agent),
            "rounds": ROUNDS,
            "mod": _MODULUS,
            "cookie": COOKIE,
            "ttl": self._ttl(),
        }
        body = (
            '<div id="challenge" data-state="checking">'
            "<h1>Checking your browser</h1><p>This takes a moment.</p></div>"
            f"<script>{script}</script>"
        )
        return layout("Checking your browser", body)


async def _html(send: Send, status: int, html: str) -> None:
    body = html.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_guarded(ctx: ServiceContext) -> ASGIApp:
    """The catalogue behind `BrowserGuard` (and the optional per-identity limit)."""
    catalog = Catalog(ctx.chaos.draw, int(ctx.options.get("products", 1000)))
    app = Starlette(routes=catalogue_routes(catalog, ctx.options, "Sandbox guarded catalogue"))
    secret = hashlib.sha256(f"scrape-guarded|{ctx.seed}".encode()).digest()
    return RateLimitMiddleware(BrowserGuard(app, secret, ctx.options), TokenBuckets(ctx.options))


def guarded_spec() -> ServiceSpec:
    """1,000 products that only a browser (headers plus a script-set cookie) may read."""
    return ServiceSpec(
        "scrape-guarded",
        build_guarded,
        options={
            "products": 1000,
            "page_size": 50,
            "guard_ttl_s": 900,
            "reject_automation": False,
            "rate_per_s": 0,
        },
    )
