"""Tier memory: decayed counts per site and rung in the database, and where a site starts."""

from __future__ import annotations

import pytest

from portwright.engines.ladder import (
    DEFAULT_RUNGS,
    MemoryTierMemory,
    StoreTierMemory,
    choose_start,
    site_of,
)
from portwright.store import Store, TierStatRecord


def _stat(rung: str, ok: float, bad: float, failed_at: float | None = None) -> TierStatRecord:
    return TierStatRecord("s", rung, ok, bad, None, failed_at, 0.0)


def test_a_site_starts_on_the_cheapest_rung_that_works_or_is_untried() -> None:
    """Failing rungs are skipped, working (>90 %) or untried ones chosen, old failures re-probed."""
    now = 10_000.0
    fails = {"http": _stat("http", 0, 1, now), "http-tls": _stat("http-tls", 0, 1, now)}
    start = choose_start(DEFAULT_RUNGS, {}, threshold=0.9, reprobe_after_s=3600, now=now)
    assert start == 0
    assert (
        DEFAULT_RUNGS[
            choose_start(DEFAULT_RUNGS, fails, threshold=0.9, reprobe_after_s=3600, now=now)
        ].name
        == "browser"
    )
    learned = fails | {"browser": _stat("browser", 19, 1)}
    assert (
        DEFAULT_RUNGS[
            choose_start(DEFAULT_RUNGS, learned, threshold=0.9, reprobe_after_s=3600, now=now)
        ].name
        == "browser"
    )
    shaky = fails | {"browser": _stat("browser", 9, 1, now)}
    assert (
        DEFAULT_RUNGS[
            choose_start(DEFAULT_RUNGS, shaky, threshold=0.9, reprobe_after_s=3600, now=now)
        ].name
        == "stealth"
    )
    assert (
        choose_start(DEFAULT_RUNGS, fails, threshold=0.9, reprobe_after_s=3600, now=now + 3600) == 0
    )


def test_site_keys_are_scheme_host_and_port() -> None:
    """Paths and default ports do not split a site."""
    assert site_of("HTTP://Shop.Example:80/a?b") == "http://shop.example"
    assert site_of("https://shop.example:8443/x") == "https://shop.example:8443"


async def test_memory_decays_old_outcomes() -> None:
    """Newer outcomes weigh more: after a success streak one failure barely dents the rate."""
    memory = MemoryTierMemory()
    for _ in range(20):
        await memory.record("s", "http", ok=True)
    await memory.record("s", "http", ok=False)
    stat = (await memory.stats("s"))["http"]
    assert 0.9 < stat.success_rate < 1.0
    assert stat.last_fail_at is not None


@pytest.mark.postgres
async def test_tier_memory_is_shared_through_the_database(db_url: str) -> None:
    """What one worker learns about a site, another worker on the same database reads."""
    one, two = Store.open(db_url), Store.open(db_url, run_migrations=False)
    try:
        learner, reader = StoreTierMemory(one, flush_s=0), StoreTierMemory(two, cache_s=0)
        await learner.record("http://shop", "http", ok=False)
        for _ in range(3):
            await learner.record("http://shop", "browser", ok=True)
        stats = await reader.stats("http://shop")
        assert stats["http"].success_rate == 0.0
        assert stats["browser"].successes == pytest.approx(1 + 0.95 + 0.95**2)
        assert (
            DEFAULT_RUNGS[
                choose_start(
                    DEFAULT_RUNGS,
                    stats | {"http-tls": stats["http"]},
                    threshold=0.9,
                    reprobe_after_s=3600,
                )
            ].name
            == "browser"
        )
        assert two.fleet.forget_tiers("http://shop") == 2
        assert await StoreTierMemory(one, cache_s=0).stats("http://shop") == {}
    finally:
        one.close()
        two.close()


async def test_store_memory_folds_successes_within_its_window(db_url: str) -> None:
    """Successes within `flush_s` of a pair's last write are one write later, with the same
    decayed counts as one write each; a failure writes them (first) and itself at once."""
    store = Store.open(db_url)
    try:
        memory = StoreTierMemory(store, cache_s=0, flush_s=3600)
        await memory.record("http://shop", "http", ok=True)  # the first: written at once
        assert (await memory.stats("http://shop"))["http"].successes == pytest.approx(1.0)
        for _ in range(4):
            await memory.record("http://shop", "http", ok=True)
        assert (await memory.stats("http://shop"))["http"].successes == pytest.approx(1.0)
        await memory.record("http://shop", "http", ok=False)
        stat = (await memory.stats("http://shop"))["http"]
        assert stat.successes == pytest.approx(sum(0.95**k for k in range(5)) * 0.95)
        assert stat.failures == pytest.approx(1.0)
        for _ in range(3):
            await memory.record("http://shop", "http", ok=True)
        await memory.flush()
        stat = (await memory.stats("http://shop"))["http"]
        assert stat.failures == pytest.approx(0.95**3)
        expected = sum(0.95**k for k in range(5)) * 0.95**4 + sum(0.95**k for k in range(3))
        assert stat.successes == pytest.approx(expected)
    finally:
        store.close()
