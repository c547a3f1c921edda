"""The engine ladder against the sandbox scrape sites, through real proxies and real Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import structlog

from portwright.engines.browser import BrowserPool, PoolConfig
from portwright.engines.ladder import Ladder, LadderConfig, MemoryTierMemory, Rule
from portwright.observability import configure_logging
from portwright.resources import (
    PoolExhaustedError,
    ProxyPool,
    SolverChain,
    StaticProxyList,
    TwoCaptchaSolver,
)
from portwright.sandbox import SandboxWorld, captcha, proxies, scrape
from portwright.sandbox.proxies import proxy_catalog
from portwright.sdk import BlockedError, ChallengeError, PermanentError
from portwright.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

RULES = {"title": Rule("h1.title"), "price": Rule("span.price", attribute="data-amount")}


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    specs = [*scrape.specs(), *captcha.specs({"solve_time_s": 0.05}), *proxies.specs()]
    with SandboxWorld(specs, seed=31) as w:
        yield w


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browsers() -> AsyncIterator[BrowserPool]:
    async with BrowserPool(config=PoolConfig(max_browsers=2, contexts_per_browser=4)) as pool:
        yield pool


def _ladder(world: SandboxWorld, browsers: BrowserPool, **kw: object) -> Ladder:
    solver = TwoCaptchaSolver(world.url("captcha-solver"), "sandbox-key", poll_s=0.05)
    return Ladder(
        browsers=browsers,
        proxies=ProxyPool([StaticProxyList.from_catalog("sandbox", proxy_catalog(world))]),
        captcha=SolverChain({"sandbox": solver}),
        memory=MemoryTierMemory(),
        config=LadderConfig(timeout_s=10.0, settle_s=4.0),
        **kw,  # type: ignore[arg-type]
    )


async def test_each_site_settles_on_its_cheapest_working_rung(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """Static stays on HTTP, JS and the guarded site climb to a browser once, then start there."""
    expected = {
        "scrape-static": "http",
        "scrape-js": "browser",
        "scrape-guarded": "browser",
        "scrape-captcha": "http",
    }
    async with _ladder(world, browsers) as ladder:
        for site, rung in expected.items():
            base = world.url(site)
            first = await ladder.fetch(f"{base}/product/3", extract=RULES, session_id=site)
            second = await ladder.fetch(f"{base}/product/4", extract=RULES, session_id=site)
            assert (first.rung, second.rung) == (rung, rung), site
            assert first.extracted["title"], site
            assert second.started_on == rung, site
            assert not second.climbed, site
            assert second.credits == {"http": 1, "browser": 5}[rung]
            assert await ladder.start_rung(f"{base}/product/9") == rung
    proxy_tiers = {first.proxy_tier, second.proxy_tier}
    assert proxy_tiers <= {"datacenter", "residential"}


async def test_the_captcha_wall_is_solved_through_the_solver_and_kept_by_the_session(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """The 2captcha-compatible solver answers the wall once; the session's pass opens the rest."""
    solves_before = len(world.ledger("captcha-solver").entries("solve"))
    async with _ladder(world, browsers) as ladder:
        base = world.url("scrape-captcha")
        results = [
            await ladder.fetch(f"{base}/product/{i}", extract=RULES, session_id="cap")
            for i in (20, 21, 22)
        ]
        browser = await ladder.fetch(
            f"{base}/product/23", engine="browser", extract=RULES, session_id="cap-b"
        )
    assert [r.captcha_solved for r in results] == [True, False, False]
    assert all(r.extracted["title"] for r in results)
    assert browser.captcha_solved
    assert browser.rung == "browser"
    assert browser.extracted["title"]
    assert len(world.ledger("captcha-solver").entries("solve")) - solves_before == 2


async def test_a_hardened_browser_passes_where_automation_is_refused(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """With automation refused by the guard, the plain browser is blocked and stealth works."""
    world.context("scrape-guarded").options["reject_automation"] = True
    try:
        async with _ladder(world, browsers) as ladder:
            url = f"{world.url('scrape-guarded')}/product/40"
            result = await ladder.fetch(url, engine="auto", extract=RULES)
            assert result.rung == "stealth"
            assert result.proxy_tier == "mobile"
            outcomes = [(a.rung, a.outcome) for a in result.attempts]
            assert ("browser", "blocked") in outcomes
            again = await ladder.fetch(f"{world.url('scrape-guarded')}/product/41", extract=RULES)
            assert again.started_on == "stealth"
    finally:
        world.context("scrape-guarded").options["reject_automation"] = False


async def test_a_banned_identity_is_burned_and_rotated_out(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """A 403 from the edge burns that proxy for the site; the fetch succeeds on the next one."""
    world.chaos("scrape-static").update({"banned_identities": ["proxy-dc-1"]})
    try:
        async with _ladder(world, browsers) as ladder:
            assert ladder.proxies is not None
            base = world.url("scrape-static")
            results = [
                await ladder.fetch(f"{base}/product/{i}", extract=RULES) for i in range(1, 5)
            ]
            assert all(r.rung == "http" and r.extracted["title"] for r in results)
            assert "proxy-dc-1" not in {r.proxy for r in results}
            status = {s.name: s for s in ladder.proxies.status()}
            assert status["proxy-dc-1"].burned_for == (
                "http://127.0.0.1:" + base.rsplit(":", 1)[1],
            )
            assert status["proxy-dc-2"].burned_for == ()
    finally:
        world.chaos("scrape-static").update({"banned_identities": []})


async def test_every_identity_of_a_tier_banned_raises_instead_of_looping(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """With every datacenter proxy banned an HTTP-only fetch burns them, then reports exhaustion."""
    datacenter = [p["name"] for p in proxy_catalog(world) if p["tier"] == "datacenter"]
    world.chaos("scrape-static").update({"banned_identities": datacenter})
    try:
        async with _ladder(world, browsers) as ladder:
            url = f"{world.url('scrape-static')}/product/77"
            with pytest.raises(BlockedError) as first:
                await ladder.fetch(url, engine="http", job_id="job-1")
            assert list(first.value.details["attempts"]) == ["blocked"] * 4
            with pytest.raises(PoolExhaustedError):
                await ladder.fetch(url, engine="http")
            assert ladder.proxies is not None
            assert ladder.proxies.rotate("job-1", "scrape", "still banned") is False
    finally:
        world.chaos("scrape-static").update({"banned_identities": []})


async def test_with_the_solver_down_the_captcha_goes_to_a_person(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """A dead solver service ends in ChallengeError asking for an operator."""
    world.chaos("captcha-solver").update({"down": True})
    try:
        async with _ladder(world, browsers) as ladder:
            with pytest.raises(ChallengeError) as caught:
                await ladder.fetch(f"{world.url('scrape-captcha')}/product/90", engine="http")
            assert caught.value.details["needs_operator"] is True
    finally:
        world.chaos("captcha-solver").update({"down": False})


async def test_rate_limits_rotate_identities_then_wait(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """Past one identity's budget the ladder moves to fresh identities and never fails the fetch."""
    options = world.context("scrape-static").options
    before = dict(options)
    options.update({"rate_per_s": 2.0, "burst": 2})
    try:
        async with _ladder(world, browsers) as ladder:
            base = world.url("scrape-static")
            results = [
                await ladder.fetch(f"{base}/product/{100 + i}", engine="http", extract=RULES)
                for i in range(10)
            ]
        assert all(r.extracted["title"] for r in results)
        assert len({r.proxy for r in results}) >= 3
    finally:
        options.clear()
        options.update(before)


async def test_screenshots_and_engine_choices_are_honoured(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """A screenshot needs a browser; engine=http never launches one; unknown options are refused."""
    async with _ladder(world, browsers) as ladder:
        base = world.url("scrape-static")
        shot = await ladder.fetch(f"{base}/product/2", screenshot=True)
        assert shot.rung == "browser"
        assert shot.screenshot is not None
        assert shot.screenshot.startswith(b"\x89PNG")
        shell = await ladder.fetch(
            f"{world.url('scrape-js')}/product/2", engine="http", extract=RULES
        )
        assert shell.rung in ("http", "http-tls")
        assert shell.extracted == {"title": None, "price": None}
        with pytest.raises(PermanentError, match="unknown engine"):
            await ladder.fetch(f"{base}/product/2", engine="warp")
        with pytest.raises(PermanentError, match="screenshot"):
            await ladder.fetch(f"{base}/product/2", engine="http", screenshot=True)
        with pytest.raises(PermanentError, match="proxy tier"):
            await ladder.fetch(f"{base}/product/2", proxy_tier="satellite")


async def test_a_browser_fetch_waits_for_content_its_extraction_rules_name(
    world: SandboxWorld, browsers: BrowserPool
) -> None:
    """Without wait_for, late script-rendered content named by an extraction rule is waited for."""
    options = world.context("scrape-js").options
    options["render_delay_ms"] = 400
    try:
        async with _ladder(world, browsers) as ladder:
            url = f"{world.url('scrape-js')}/product/61"
            result = await ladder.fetch(url, engine="browser", extract=RULES)
            assert result.extracted["title"]
            assert result.extracted["price"]
    finally:
        options["render_delay_ms"] = 0


async def test_a_fetch_in_a_session_logs_its_rung_attempts_with_the_session_id(
    world: SandboxWorld, browsers: BrowserPool, capfd: pytest.CaptureFixture[str]
) -> None:
    """At debug level each failed rung attempt is a log line naming the site, the rung and the
    outcome, with the fetch's session id; a fetch outside a session names none."""
    configure_logging(Settings(log_json=True, log_level="debug"))
    try:
        async with _ladder(world, browsers) as ladder:
            url = f"{world.url('scrape-guarded')}/product/42"
            with pytest.raises(BlockedError):
                await ladder.fetch(url, engine="http", session_id="s-7")
            with pytest.raises(BlockedError):
                await ladder.fetch(url, engine="http")
    finally:
        structlog.reset_defaults()
    out = capfd.readouterr().out.splitlines()
    lines = [json.loads(line) for line in out if line[:1] == "{"]
    attempts = [line for line in lines if line["event"] == "rung attempt"]
    in_session = [line for line in attempts if line.get("session_id") == "s-7"]
    assert {line["rung"] for line in in_session} == {"http", "http-tls"}
    assert all(line["outcome"] == "blocked" for line in in_session)
    assert all(line["site"] == world.url("scrape-guarded") for line in in_session)
    assert len(attempts) > len(in_session)  # the second fetch's lines, without a session
    assert all("session_id" not in line for line in attempts if line not in in_session)
