"""The browser rungs: a pooled Chromium context per fetch (hardened on the top rung).

A page that answers 4xx is given a moment to move on when it carries
scripts (a challenge that sets a cookie and reloads); one without scripts is
a block page. With an SSRF guard, the context's proxy is a `GuardProxy` of the
fetch's own, which checks every request the page makes (each redirect hop,
every subresource, each tunnel) before forwarding it to the real proxy; a
refused navigation fails the fetch with the guard's reason. A captcha form
is answered through the solver and submitted in the page.
Evidence (screenshot, DOM, timings, trace) goes to an optional sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from playwright.async_api import Page, Response
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from portwright.engines._errors import classify_status
from portwright.engines.browser import (
    BrowserPool,
    EvidenceSink,
    GuardedIdentity,
    RouteGuard,
    capture_page,
    record_page,
)
from portwright.engines.ladder._guard_proxy import GuardProxy
from portwright.engines.ladder._http import Exchange, FetchRequest, Guard, Solve, guards_of
from portwright.engines.ladder._session import Session
from portwright.engines.ladder._signals import ChallengeForm, find_challenge
from portwright.resources.proxies import Proxy
from portwright.sdk import ChallengeError, TransientError

__all__ = ["BrowserFetcher"]

_SUBMIT_JS = """
([name, value]) => {
  const field = document.querySelector(`form [name="${name}"]`);
  field.value = value;
  const form = field.form;
  if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
}
"""


class _Navigations:
    """The status of the page's latest main-frame document, and how many there were.

    `handled` counts the documents already judged: settling waits only for a newer one.
    """

    def __init__(self, page: Page) -> None:
        self.page = page
        self.status = 0
        self.count = 0
        self.handled = 1
        self.moved = asyncio.Event()
        page.on("response", self._seen)

    def _seen(self, response: Response) -> None:
        with contextlib.suppress(Exception):
            if response.request.is_navigation_request() and response.frame == self.page.main_frame:
                self.status = response.status
                self.count += 1
                self.moved.set()


PAGE_CLOSE_S = 5.0  # how long closing a fetch's page may take (it may be closing already)


def _implicit_wait(request: FetchRequest) -> str | None:
    """A Playwright selector for the first extraction rule (content a script may render)."""
    for rule in request.extract.values():
        if rule.type == "xpath":
            return f"xpath={rule.selector}"
        css = rule.selector.split("::", 1)[0].strip()  # parsel's ::text / ::attr() are not CSS
        if css:
            return css
    return None


def _raise_refused_hop(checked: tuple[GuardProxy, RouteGuard] | None) -> None:
    """A remote browser's request the route guard refused only after it was sent (a
    redirect hop, or one another route let through) fails the fetch, whatever loaded."""
    if checked is not None and checked[1].refused_hops:
        raise checked[1].refused_hops[0]


class BrowserFetcher:
    """Fetches through the browser pool; `hardened` picks the pool's hardened browsers."""

    def __init__(
        self,
        pool: BrowserPool,
        *,
        hardened: bool,
        settle_s: float = 6.0,
        max_bytes: int = 5_000_000,
        captcha_attempts: int = 2,
        trace: bool = False,
        guard: Guard | None = None,
    ) -> None:
        self.pool = pool
        self.hardened = hardened
        self.settle_s = settle_s
        self.max_bytes = max_bytes
        self.captcha_attempts = captcha_attempts
        self.trace = trace
        self.guard = guard

    async def aclose(self) -> None:
        return None

    async def fetch(
        self,
        request: FetchRequest,
        *,
        proxy: Proxy | None,
        session: Session,
        solve: Solve,
        sink: EvidenceSink | None = None,
    ) -> Exchange:
        started = time.time()
        guard = guards_of(request, self.guard)
        if guard is None:
            return await self._fetch(request, proxy, session, solve, sink, started, None)
        route = RouteGuard(guard)
        async with GuardProxy(guard, proxy) as checked:
            # a local browser through the loopback guard proxy, a remote (CDP) one through
            # `proxy` itself with every request checked by the route guard
            identity = GuardedIdentity(checked.proxy, proxy, route)
            try:
                return await self._fetch(
                    request, identity, session, solve, sink, started, (checked, route)
                )
            finally:
                await route.aclose()

    async def _fetch(
        self,
        request: FetchRequest,
        proxy: Proxy | GuardedIdentity | None,
        session: Session,
        solve: Solve,
        sink: EvidenceSink | None,
        started: float,
        checked: tuple[GuardProxy, RouteGuard] | None,
    ) -> Exchange:
        tracing = (self.trace if request.trace is None else request.trace) and sink is not None
        # A named session shares one context, unless traced or guarded (a context per fetch,
        # its cookies carried by the session).
        if session.key is not None and not tracing and not isinstance(proxy, GuardedIdentity):
            context = self.pool.session_context(session.key, proxy=proxy, hardened=self.hardened)
        else:
            context = self.pool.context(
                proxy=proxy, seed=session.key or request.url, hardened=self.hardened, trace=tracing
            )
        async with context as lease:
            await lease.add_cookies(session.rows())
            page = await lease.new_page()
            try:
                exchange = await self._drive(page, request, solve)
                _raise_refused_hop(checked)
                if session.key is not None:  # a private session's cookies die with it
                    session.update(await lease.cookies())
            except Exception:
                refused = [*checked[0].refused, *checked[1].refused] if checked else []
                if refused:
                    raise refused[0] from None
                raise
            else:
                return exchange
            finally:
                if sink is not None:
                    await self._evidence(sink, page, lease.stop_trace, started)
                with contextlib.suppress(Exception):  # bounded: a refused hop may close it too
                    await asyncio.wait_for(page.close(), timeout=PAGE_CLOSE_S)

    async def _drive(self, page: Page, request: FetchRequest, solve: Solve) -> Exchange:
        navs = _Navigations(page)
        deadline = time.monotonic() + request.timeout_s
        response = await page.goto(request.url, wait_until="load")
        navs.status = navs.status or (response.status if response else 0)
        solved = False
        for _ in range(self.captcha_attempts + 1):
            await self._settle(page, navs)
            wanted = await self._has_wanted(page, request, deadline, navs.status)
            challenge = None
            if navs.status >= 400 or not wanted:
                challenge = find_challenge(await page.content(), page.url)
            if challenge is None:
                classify_status(navs.status, page.url)
                if not wanted:
                    raise TransientError(f"{request.wait_for!r} never appeared on {page.url}")
                return await self._exchange(page, navs.status, request, solved)
            await self._answer(page, challenge, await solve(challenge.sitekey, page.url))
            navs.handled = navs.count
            solved = True
        raise ChallengeError(f"the captcha answer was refused on {request.url}", url=request.url)

    async def _settle(self, page: Page, navs: _Navigations) -> None:
        """Give a scripted 4xx page (a challenge that reloads) up to `settle_s` to move on."""
        if navs.status < 400 or not await page.locator("script").count():
            return
        deadline = time.monotonic() + self.settle_s
        while navs.count <= navs.handled and (remaining := deadline - time.monotonic()) > 0:
            navs.moved.clear()
            if navs.count > navs.handled:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(navs.moved.wait(), remaining)
        navs.handled = navs.count
        with contextlib.suppress(PlaywrightTimeoutError):
            await page.wait_for_load_state("load", timeout=self.settle_s * 1000)

    async def _has_wanted(
        self, page: Page, request: FetchRequest, deadline: float, status: int
    ) -> bool:
        """Whether `wait_for` appeared (waiting for it). Without one, the first extraction
        rule stands in, for a short while only: its absence is an answer, not a failure."""
        selector, required = request.wait_for, True
        if not selector:
            selector, required = _implicit_wait(request), False
            if selector is None:
                return True
        # A 4xx page is only checked, not waited on: its content will not come.
        remaining = max(0.1, deadline - time.monotonic())
        if status >= 400:
            remaining = 0.05
        elif not required:
            remaining = min(remaining, self.settle_s)
        try:
            await page.wait_for_selector(selector, state="attached", timeout=remaining * 1000)
        except PlaywrightTimeoutError:
            return not required
        return True

    async def _answer(self, page: Page, challenge: ChallengeForm, token: str) -> None:
        async with page.expect_navigation(wait_until="load"):
            await page.evaluate(_SUBMIT_JS, [challenge.answer_field, token])

    async def _exchange(
        self, page: Page, status: int, request: FetchRequest, solved: bool
    ) -> Exchange:
        html = (await page.content())[: self.max_bytes]
        shot = None
        if request.screenshot:
            shot = await page.screenshot(type="png", full_page=True, animations="disabled")
        return Exchange(status, page.url, html, shot, solved)

    async def _evidence(
        self, sink: EvidenceSink, page: Page, stop_trace: Any, started: float
    ) -> None:
        with contextlib.suppress(Exception):
            evidence = await capture_page(page)
            await record_page(sink, evidence, step_started=started, engine="browser")
        with contextlib.suppress(Exception):
            trace = await stop_trace()
            if trace:
                await sink.attach("trace", trace, content_type="application/zip", engine="browser")
