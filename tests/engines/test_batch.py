"""Done-when for the ladder: a 500-URL batch over the sandbox sites, learned once for all.

This drives the ladder directly, not `POST /v1/batch`: it measures the engines (rungs,
tier memory, a second worker process reusing what was learned), and 500 durable jobs
through the gateway would cost minutes of the suite on top. The API path is covered by
`test_scrape_api.py` (the demo's batch through `/v1/batch`, tiers and metering checked).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from portwright.engines.browser import BrowserPool, PoolConfig
from portwright.engines.ladder import FetchResult, Ladder, LadderConfig, Rule, StoreTierMemory
from portwright.resources import ProxyPool, SolverChain, StaticProxyList, TwoCaptchaSolver
from portwright.resources.proxies import StoreBurnLedger
from portwright.sandbox import SandboxWorld, captcha, proxies, scrape
from portwright.sandbox.proxies import proxy_catalog
from portwright.store import Store

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(900),  # the module's batch runs in the first test's setup
]

RULES = {"title": Rule("h1.title"), "price": Rule("span.price", attribute="data-amount")}
CHEAPEST = {
    "scrape-static": "http",
    "scrape-js": "browser",
    "scrape-guarded": "browser",
    "scrape-captcha": "http",
}
# Weighted to the cheap sites to keep the suite quick; benchmarks/fleet_bench.py runs an even mix.
MIX = {"scrape-static": 260, "scrape-js": 50, "scrape-guarded": 50, "scrape-captcha": 140}
# Fetches in flight at once. On a 2-core machine the browser rungs are CPU-bound in Chromium:
# 8 at once took ~45 % longer than 4 for the same 500 URLs (each page waiting on the others),
# and the learned-rung bound below (`len - CONCURRENCY`) is the stricter for it.
CONCURRENCY = 4


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    specs = [*scrape.specs(), *captcha.specs({"solve_time_s": 0.05}), *proxies.specs()]
    with SandboxWorld(specs, seed=41) as w:
        yield w


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('batch') / 'app.sqlite'}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def batch(world: SandboxWorld, database: str) -> AsyncIterator[list[tuple[str, object]]]:
    store = Store.open(database)
    solver = TwoCaptchaSolver(world.url("captcha-solver"), "sandbox-key", poll_s=0.05)
    pool = ProxyPool(
        [StaticProxyList.from_catalog("sandbox", proxy_catalog(world))],
        ledger=StoreBurnLedger(store),
    )
    urls = [
        (site, f"{world.url(site)}/product/{index + 1}")
        for site, count in MIX.items()
        for index in range(count)
    ]
    gate = asyncio.Semaphore(CONCURRENCY)
    try:
        async with (
            BrowserPool(config=PoolConfig(max_browsers=2, contexts_per_browser=4)) as browsers,
            Ladder(
                browsers=browsers,
                proxies=pool,
                captcha=SolverChain({"sandbox": solver}),
                memory=StoreTierMemory(store),
                config=LadderConfig(timeout_s=20.0),
            ) as ladder,
        ):

            async def one(site: str, url: str) -> tuple[str, object]:
                session = "batch-captcha" if site == "scrape-captcha" else None
                async with gate:
                    try:
                        return site, await ladder.fetch(url, extract=RULES, session_id=session)
                    except Exception as exc:
                        return site, exc

            yield await asyncio.gather(*(one(site, url) for site, url in urls))
    finally:
        store.close()


async def test_a_500_url_batch_succeeds_and_settles_on_the_cheapest_rungs(
    batch: list[tuple[str, object]],
) -> None:
    """At least 99 % succeed with content; each site ends on its cheapest working rung."""
    assert len(batch) == 500
    ok = [(site, r) for site, r in batch if isinstance(r, FetchResult) and r.extracted["title"]]
    failures = Counter(repr(r)[:120] for _, r in batch if not isinstance(r, FetchResult))
    assert len(ok) >= 495, failures
    for site, rung in CHEAPEST.items():
        results = [r for s, r in ok if s == site]
        assert {r.rung for r in results} == {rung}, site
        learned = sum(1 for r in results if r.started_on == rung and not r.climbed)
        assert learned >= len(results) - CONCURRENCY, (site, learned, len(results))


async def test_a_second_worker_process_starts_on_the_learned_rungs(
    batch: list[tuple[str, object]], world: SandboxWorld, database: str
) -> None:
    """Another process on the same database starts each site on its learned rung, no climbing."""
    assert batch
    urls = [f"{world.url(site)}/product/999" for site in CHEAPEST]
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    completed = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "tests.engines._second_worker",
            database,
            world.url("captcha-solver"),
            *urls,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 4
    for site, line in zip(CHEAPEST, lines, strict=True):
        assert line["started_on"] == CHEAPEST[site], line
        assert line["rung"] == CHEAPEST[site], line
        assert not line["climbed"], line
        assert line["title"], line
