"""The SSRF guard on a remote (CDP) browser: no loopback guard proxy, each request checked
by the context's routing instead, on real Chromium reached over CDP.

The "remote" browser is a Chromium of the sandbox farm (`ChromiumFarm`, reached at a CDP
URL like a hosted one); a browser there could not reach this host's loopback guard
proxy, so its context is given the identity's own way out (here: direct) and a
`RouteGuard`. The allowed page is on 127.0.0.2:P (allowlisted); 127.0.0.1:P is a
listener the guard must keep the browser from.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from portwright.engines.browser import (
    BrowserPool,
    ChromiumFarm,
    GuardedIdentity,
    PoolConfig,
    RemoteCdp,
    RouteGuard,
)
from portwright.engines.ladder import GuardProxy, Session
from portwright.engines.ladder._browser import BrowserFetcher
from portwright.engines.ladder._http import FetchRequest
from portwright.resources.ssrf import UrlGuard, parse_allowlist, refusing
from portwright.sdk import PermanentError
from portwright.testing import wait_until
from tests.support import Listener

PAGE = '<html><head><title>checked</title></head><body><h1 class="t">checked</h1></body></html>'


@dataclass
class Sites:
    allowed: Listener  # 127.0.0.2:P, allowlisted
    forbidden: Listener  # 127.0.0.1:P, not

    @property
    def page(self) -> str:
        return f"http://127.0.0.2:{self.allowed.port}/page"

    @property
    def target(self) -> str:
        return f"http://127.0.0.1:{self.forbidden.port}/secret"

    def check(self) -> UrlGuard:
        return UrlGuard(parse_allowlist([f"127.0.0.2:{self.allowed.port}"]))


@pytest.fixture
def sites() -> Iterator[Sites]:
    forbidden = Listener("127.0.0.1", 0, body="forbidden")
    hop = {"/hop": f"http://127.0.0.1:{forbidden.port}/secret"}
    with forbidden, Listener("127.0.0.2", 0, body=PAGE, redirects=hop) as allowed:
        yield Sites(allowed, forbidden)


@pytest.fixture
async def remote() -> AsyncIterator[BrowserPool]:
    async with ChromiumFarm() as farm:
        pool = BrowserPool(
            RemoteCdp(farm.acquire, release=farm.release, name="farm"),
            config=PoolConfig(max_browsers=1, idle_close_s=30),
        )
        try:
            yield pool
        finally:
            await pool.aclose()


async def _no_solve(sitekey: str, url: str) -> str:
    raise AssertionError("no captcha here")


async def test_a_remote_context_goes_out_without_the_loopback_proxy(
    sites: Sites, remote: BrowserPool
) -> None:
    """On a remote browser the context gets the identity's way out (direct here), not the
    loopback guard proxy; an allowed page loads, checked by the route guard; a forbidden
    address is aborted before the browser sends anything, with the guard's reason."""
    route = RouteGuard(refusing(sites.check()))
    async with GuardProxy(refusing(sites.check()), None) as loopback:
        identity = GuardedIdentity(loopback.proxy, None, route)
        async with remote.context(proxy=identity, seed="remote") as lease:
            assert lease.remote
            assert lease.proxy is None  # not http://127.0.0.1:<guard proxy port>
            page = await lease.new_page()
            await page.goto(sites.page)
            assert await page.inner_text("h1") == "checked"
            assert route.checked >= 1
            with pytest.raises(Exception, match="ERR_BLOCKED_BY_CLIENT"):
                await page.goto(sites.target)
    assert sites.allowed.hits == [f"GET /page host=127.0.0.2:{sites.allowed.port}"]
    assert sites.forbidden.hits == []
    assert len(route.refused) == 1
    assert "127.0.0.1" in str(route.refused[0])
    assert loopback.refused == []  # the loopback proxy saw nothing: it was not used


async def test_a_local_context_keeps_the_loopback_guard_proxy(sites: Sites) -> None:
    """The same identity on a local Chromium goes through the loopback guard proxy (which
    pins the checked address) and attaches no route guard."""
    pool = BrowserPool(config=PoolConfig(max_browsers=1, idle_close_s=30))
    route = RouteGuard(refusing(sites.check()))
    try:
        async with GuardProxy(refusing(sites.check()), None) as loopback:
            identity = GuardedIdentity(loopback.proxy, None, route)
            async with pool.context(proxy=identity, seed="local") as lease:
                assert not lease.remote
                assert lease.proxy == loopback.proxy
                page = await lease.new_page()
                await page.goto(sites.page)
                assert await page.inner_text("h1") == "checked"
    finally:
        await pool.aclose()
    assert route.checked == 0


async def test_the_browser_rung_on_a_remote_browser_refuses_with_the_guards_reason(
    sites: Sites, remote: BrowserPool
) -> None:
    """The ladder's browser rung on a remote browser: an allowed page is fetched, a
    forbidden one fails permanently with the SSRF guard's reason and reaches nothing."""
    fetcher = BrowserFetcher(remote, hardened=False, guard=refusing(sites.check()))
    done = await fetcher.fetch(
        FetchRequest(sites.page, timeout_s=15.0), proxy=None, session=Session(None),
        solve=_no_solve,
    )  # fmt: skip
    assert "checked" in done.html
    with pytest.raises(PermanentError, match=r"SSRF guard.*127\.0\.0\.1"):
        await fetcher.fetch(
            FetchRequest(sites.target, timeout_s=15.0), proxy=None, session=Session(None),
            solve=_no_solve,
        )  # fmt: skip
    assert sites.forbidden.hits == []


async def test_a_redirect_to_a_forbidden_address_fails_the_fetch(
    sites: Sites, remote: BrowserPool
) -> None:
    """A redirect hop, which routing does not hand to the route, is checked when the
    browser reports it: the hop is refused, its page closed, and the rung fails with the
    guard's reason instead of returning what the hop loaded."""
    fetcher = BrowserFetcher(remote, hardened=False, guard=refusing(sites.check()))
    hop = f"http://127.0.0.2:{sites.allowed.port}/hop"
    with pytest.raises(PermanentError, match=r"SSRF guard.*127\.0\.0\.1"):
        await fetcher.fetch(
            FetchRequest(hop, timeout_s=15.0), proxy=None, session=Session(None),
            solve=_no_solve,
        )  # fmt: skip


async def test_a_page_route_of_the_adapters_own_does_not_get_past_the_guard(
    sites: Sites, remote: BrowserPool
) -> None:
    """A page-level route (it runs before the context's) that lets a forbidden request
    through: its response is seen and refused (what fails the step), with the reason."""
    route = RouteGuard(refusing(sites.check()))
    async with GuardProxy(refusing(sites.check()), None) as loopback:
        identity = GuardedIdentity(loopback.proxy, None, route)
        async with remote.context(proxy=identity, seed="own-route") as lease:
            page = await lease.new_page()
            await page.route("**/*", lambda r: r.continue_())
            with contextlib.suppress(Exception):  # closed under it, or loaded then closed
                await page.goto(sites.target)
            await wait_until(lambda: route.refused_hops, timeout=15)
    assert len(route.refused_hops) == 1
    assert "127.0.0.1" in str(route.refused_hops[0])
