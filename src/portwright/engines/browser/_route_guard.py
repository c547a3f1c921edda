"""The SSRF guard for a browser that is not on this host (a remote CDP endpoint).

A local browser reaches the web through a loopback `GuardProxy` (engines.ladder), which
sees every request and dials the checked address. A remote browser cannot reach this
host's loopback, so its context talks to the web through its own identity (the upstream
proxy, or directly) and this guard checks each request the context makes instead:

- every HTTP(S) request the context routes (navigations, subresources, fetch/XHR) is
  checked before the remote browser sends it; a refused one is aborted;
- every WebSocket the page opens is checked before it connects (refused: closed);
- a redirect hop, which Playwright's routing does not hand to the route, is checked
  when the browser reports it; a refused hop is recorded in `refused_hops` (and
  `refused`), which fails the step or fetch with the guard's reason whatever the page
  showed, and its page is closed (best effort);
- so is a response to a request this guard's route never saw (a page-level route of the
  adapter's own, which runs first, let it through).

What a proxy gives and this cannot: the remote browser resolves names itself, so the
address is checked here but not pinned (a name that resolves differently there is not
caught), and a refused redirect hop has already been sent when it is seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from playwright.async_api import BrowserContext, Request, Response, Route, WebSocketRoute

from portwright.resources.proxies import Proxy
from portwright.sdk import PermanentError

__all__ = ["GuardedIdentity", "RouteGuard"]

# An SSRF check (the ladder's `Guard`): raises to refuse the URL.
Check = Callable[[str], Awaitable[Sequence[str] | None]]

_CHECKED = ("http://", "https://", "ws://", "wss://")
PAGE_CLOSE_S = 5.0  # how long a refused hop's page may take to close


class RouteGuard:
    """`await RouteGuard(check).attach(context)`; refusals are kept in `refused`."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.refused: list[PermanentError] = []
        self.refused_hops: list[PermanentError] = []  # redirect hops: sent before seen
        self.checked = 0  # requests checked (routed, WebSocket, redirect hops)
        self._tasks: set[asyncio.Task[None]] = set()
        self._routed: weakref.WeakSet[Request] = weakref.WeakSet()

    async def attach(self, context: BrowserContext) -> None:
        await context.route("**/*", self._route)
        await context.route_web_socket("**/*", self._web_socket)
        context.on("request", self._request)
        context.on("response", self._response)

    async def _refusal(self, url: str) -> PermanentError | None:
        if not url.startswith(_CHECKED):
            return None  # data:, blob:, about: never leave the browser
        self.checked += 1
        try:
            await self.check(url)
        except Exception as exc:  # noqa: BLE001 - the guard's refusal, whatever its type
            refusal = exc if isinstance(exc, PermanentError) else None
            if refusal is None:
                refusal = PermanentError(f"url refused by the SSRF guard: {exc}", url=url)
            self.refused.append(refusal)
            return refusal
        return None

    async def _route(self, route: Route, request: Request) -> None:
        self._routed.add(request)
        if await self._refusal(request.url) is not None:
            with contextlib.suppress(Exception):  # the page may be gone meanwhile
                await route.abort("blockedbyclient")
            return
        with contextlib.suppress(Exception):
            await route.fallback()

    async def _web_socket(self, ws: WebSocketRoute) -> None:
        if await self._refusal(ws.url) is not None:
            await ws.close(code=1008, reason="refused by the SSRF guard")
            return
        ws.connect_to_server()

    def _request(self, request: Request) -> None:
        if request.redirected_from is None:
            return  # routed, and checked there
        self._later(request)

    def _response(self, response: Response) -> None:
        request = response.request
        if request.redirected_from is None and request not in self._routed:
            self._later(request)  # another route let it through before ours

    def _later(self, request: Request) -> None:
        task = asyncio.ensure_future(self._hop(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hop(self, request: Request) -> None:
        refusal = await self._refusal(request.url)
        if refusal is None:
            return
        self.refused_hops.append(refusal)
        # best effort, bounded (a close racing the browser's own navigation can hang): the
        # refusal is what fails the step
        with contextlib.suppress(Exception):
            await asyncio.wait_for(request.frame.page.close(), timeout=PAGE_CLOSE_S)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(frozen=True)
class GuardedIdentity:
    """How a guarded context reaches the web, decided by where its browser runs: a local
    browser through `local` (the loopback guard proxy), a remote one through `upstream`
    (the identity itself: a proxy, or None for direct) with `route_guard` attached."""

    local: Proxy
    upstream: Proxy | None
    route_guard: RouteGuard

    def for_browser(self, remote: bool) -> Proxy | None:
        return self.upstream if remote else self.local
