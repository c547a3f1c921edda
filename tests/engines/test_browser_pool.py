"""The browser pool on real Chromium: isolation, fingerprints, recycling, crashes, bounds, CDP."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import structlog
import structlog.testing

from portwright.engines import translate_exception
from portwright.engines.browser import (
    BrowserPool,
    ChromiumFarm,
    PoolConfig,
    RemoteCdp,
    browser_processes,
    persistent_context,
)
from portwright.resources import ProfilePool, Proxy, StaticProxyList
from portwright.sandbox import SandboxWorld, proxies
from portwright.sandbox.proxies import proxy_catalog, proxy_spec
from portwright.sdk import TransientError
from portwright.testing import wait_until
from tests.engines._sites import account_site

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    auth = proxy_spec("proxy-auth", "residential", "FR", username="user", password="p@ss:word")
    with SandboxWorld([account_site(), *proxies.specs(), auth], seed=3) as w:
        yield w


@pytest.fixture(scope="module")
def catalog(world: SandboxWorld) -> dict[str, Proxy]:
    listed = StaticProxyList.from_catalog("sandbox", proxy_catalog(world))
    return {p.name: p for p in listed.proxies()}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[BrowserPool]:
    async with BrowserPool(config=PoolConfig(max_browsers=2, contexts_per_browser=3)) as shared:
        yield shared


async def test_contexts_are_isolated_and_fingerprinted_like_their_proxy(
    pool: BrowserPool, world: SandboxWorld, catalog: dict[str, Proxy]
) -> None:
    """Each context speaks its proxy's country and identity and never sees another's cookies."""
    site = world.url("account")
    async with (
        pool.context(proxy=catalog["proxy-dc-3"], seed="job-a") as german,
        pool.context(proxy=catalog["proxy-res-1"], seed="job-b") as british,
    ):
        de, gb = await german.new_page(), await british.new_page()
        await de.goto(f"{site}/who")
        await gb.goto(f"{site}/who")
        assert await de.inner_text("#identity") == "proxy-dc-3"
        assert await gb.inner_text("#identity") == "proxy-res-1"
        assert (await de.inner_text("#langs")).startswith("de-DE")
        assert await de.evaluate("navigator.language") == "de-DE"
        assert await de.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == (
            "Europe/Berlin"
        )
        assert await gb.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == (
            "Europe/London"
        )
        agent = await de.evaluate("navigator.userAgent")
        assert "Headless" not in agent
        assert agent.startswith("Mozilla/5.0")
        await de.goto(f"{site}/set?v=only-germany")
        await gb.goto(f"{site}/whoami")
        assert await de.inner_text("#who") == "only-germany"
        assert await gb.inner_text("#who") == "nobody"


async def test_a_proxy_with_credentials_is_used_by_the_browser(
    pool: BrowserPool, world: SandboxWorld, catalog: dict[str, Proxy]
) -> None:
    """Basic proxy auth (with URL-unsafe characters in the password) works in a context."""
    async with pool.context(proxy=catalog["proxy-auth"]) as lease:
        page = await lease.new_page()
        await page.goto(f"{world.url('account')}/who")
        assert await page.inner_text("#identity") == "proxy-auth"
        assert await page.evaluate("navigator.language") == "fr-FR"


async def test_only_the_hardened_browser_hides_automation(pool: BrowserPool) -> None:
    """navigator.webdriver is true in a plain context and false in a hardened one."""
    async with pool.context() as plain, pool.context(hardened=True) as hardened:
        plain_page, hard_page = await plain.new_page(), await hardened.new_page()
        assert await plain_page.evaluate("navigator.webdriver") is True
        assert await hard_page.evaluate("navigator.webdriver") is False


async def test_contexts_stay_within_the_pool_bounds(pool: BrowserPool) -> None:
    """Ten leases wanted at once never hold more than browsers times contexts per browser."""
    peak = 0

    async def hold() -> None:
        nonlocal peak
        async with pool.context() as lease:
            await lease.new_page()
            peak = max(peak, pool.stats().contexts)
            await asyncio.sleep(0.2)

    await asyncio.gather(*(hold() for _ in range(10)))
    assert 1 < peak <= pool.config.capacity
    assert pool.stats().contexts == 0
    assert pool.stats().browsers <= pool.config.max_browsers


async def test_browsers_are_recycled_after_k_pages_and_closed_when_idle(
    world: SandboxWorld,
) -> None:
    """After K pages a browser is replaced; an idle one is closed and its processes end."""
    before = {p.pid for p in browser_processes()}
    config = PoolConfig(max_browsers=1, recycle_after_pages=3, idle_close_s=0.6)
    async with BrowserPool(config=config) as small:
        for _ in range(7):
            async with small.context() as lease:
                page = await lease.new_page()
                await page.goto(f"{world.url('account')}/whoami")
        stats = small.stats()
        assert stats.pages == 7
        assert stats.recycled == 2
        assert stats.launched == 3
        await wait_until(lambda: small.stats().browsers == 0, timeout=10)
        assert small.stats().browsers == 0
        assert small.stats().idle_closed == 1
    # the processes exit on their own schedule once the pool closed them: poll, bounded
    await wait_until(lambda: not {p.pid for p in browser_processes()} - before, timeout=10)


async def test_closing_a_pool_leaves_no_chromium_behind(world: SandboxWorld) -> None:
    """Every Chromium process a pool started is gone once the pool is closed."""
    before = {p.pid for p in browser_processes()}
    own = BrowserPool(config=PoolConfig(max_browsers=2))
    async with own.context() as a, own.context(hardened=True) as b:
        for lease in (a, b):
            page = await lease.new_page()
            await page.goto(f"{world.url('account')}/whoami")
        started = {p.pid for p in browser_processes()} - before
        assert started
    await own.aclose()
    await wait_until(lambda: not {p.pid for p in browser_processes()} & started, timeout=10)


async def test_a_remote_cdp_browser_that_crashes_is_replaced(world: SandboxWorld) -> None:
    """Over CDP from the sandbox farm: a killed browser fails as transient; the pool recovers."""
    async with ChromiumFarm() as farm:
        remote = BrowserPool(RemoteCdp(farm.acquire, release=farm.release, name="farm"))
        try:
            async with remote.context(seed="crash") as lease:
                page = await lease.new_page()
                await page.goto(f"{world.url('account')}/whoami")
                [url] = farm.urls
                os.kill(farm.pid_of(url), signal.SIGKILL)
                with pytest.raises(Exception) as caught:
                    await page.goto(f"{world.url('account')}/whoami")
                assert isinstance(translate_exception(caught.value), TransientError)
            async with remote.context(seed="again") as lease:
                page = await lease.new_page()
                await page.goto(f"{world.url('account')}/set?v=recovered")
                assert await page.inner_text("#who") == "recovered"
            assert remote.stats().crashed == 1
            assert remote.stats().launched == 2
        finally:
            await remote.aclose()
        assert farm.urls == []


async def test_a_crash_is_not_logged_as_the_job_that_started_the_pool(
    world: SandboxWorld,
) -> None:
    """The pool starts lazily inside the first job's step, but its own tasks and Playwright's
    callbacks are not that job's: a later crash is not logged with the first job's ids."""
    async with ChromiumFarm() as farm:
        remote = BrowserPool(RemoteCdp(farm.acquire, release=farm.release, name="farm"))
        try:
            with structlog.testing.capture_logs(
                processors=[structlog.contextvars.merge_contextvars]
            ) as logs:
                with structlog.contextvars.bound_contextvars(job_id="job_first"):
                    async with remote.context(seed="first") as lease:
                        page = await lease.new_page()
                        await page.goto(f"{world.url('account')}/whoami")
                async with remote.context(seed="later") as lease:
                    [url] = farm.urls
                    os.kill(farm.pid_of(url), signal.SIGKILL)
                    await wait_until(lambda: remote.stats().crashed == 1, timeout=30)
            (crash,) = [e for e in logs if e["event"].startswith("browser disconnected")]
            assert crash.get("job_id") != "job_first"
        finally:
            await remote.aclose()


async def test_a_persistent_profile_keeps_its_cookies_across_uses(
    pool: BrowserPool, world: SandboxWorld, tmp_path: Path
) -> None:
    """A user's profile remembers its cookies; a used one rests while the next one is lent."""
    profiles = ProfilePool(tmp_path / "profiles", per_user=2, cooldown_s=3600)
    first = profiles.acquire("alice")
    async with persistent_context(pool, first) as lease:
        page = await lease.new_page()
        await page.goto(f"{world.url('account')}/set?v=remembered&persist=1")
    profiles.release(first)
    second = profiles.acquire("alice")
    assert second.index != first.index
    async with persistent_context(pool, second) as lease:
        page = await lease.new_page()
        await page.goto(f"{world.url('account')}/whoami")
        assert await page.inner_text("#who") == "nobody"
    profiles.release(second)
    profiles.reset("alice", first.index)
    again = profiles.acquire("alice")
    assert again.index == first.index
    async with persistent_context(pool, again) as lease:
        page = await lease.new_page()
        await page.goto(f"{world.url('account')}/whoami")
        assert await page.inner_text("#who") == "remembered"
    profiles.release(again)
