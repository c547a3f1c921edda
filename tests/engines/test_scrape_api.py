"""Scenario 2 through the public API on a real stack: the scrape adapter on the engine ladder.

One stack (sandbox world, runtime with the browser fleet, gateway) for the module,
as `portwright up` and the demo start it; each test works in its own tenant.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from portwright.cli._stack import Stack, start_stack
from portwright.client import Client, NotFoundError
from portwright.client.models import ExtractRule, Job, ScrapeRequest
from portwright.gateway.auth import issue_key
from portwright.sandbox import SandboxWorld, captcha, proxies, scrape
from portwright.settings import Settings
from tests.engines._sites import embed_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RULES = {
    "title": ExtractRule(selector="h1.title"),
    "price": ExtractRule(selector="span.price", attribute="data-amount"),
}
ENDED = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def hidden() -> Iterator[SandboxWorld]:
    """A loopback site that is NOT on the stack's allowlist: nothing may reach it."""
    with SandboxWorld([embed_site("hidden")], seed=5) as started:
        yield started


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    specs = [
        *scrape.specs(),
        *captcha.specs({"solve_time_s": 0.05}),
        *proxies.specs(),
        embed_site("embedder"),
    ]
    with SandboxWorld(specs, seed=43) as started:
        yield started


@pytest.fixture(scope="module")
def stack(world: SandboxWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("scrape-api")
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'app.sqlite'}",
        worker_id=f"scrape-{secrets.token_hex(3)}",
        heartbeat_interval_s=0.5,
        queue_polling_interval_s=0.05,
        log_json=False,
        master_key=SecretStr("test-master-key-" + "x" * 32),
        rate_limit_default="100000/minute",
        rate_limit_write="100000/minute",
        api_key_cache_s=0.0,
    )
    started = start_stack(settings, world=world)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(stack.gateway_url, _key(stack), timeout=120.0) as api:
        yield api


def _key(stack: Stack) -> str:
    tenant = f"t-{secrets.token_hex(4)}"
    return issue_key(stack.runtime.store, tenant=tenant, plan="business").key


def _ended(client: Client, job: Job, timeout_s: float = 90.0) -> Job:
    deadline = time.monotonic() + timeout_s
    while job.status not in ENDED and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get_job(job.id)
    return job


def _sync(url: str, **options: Any) -> ScrapeRequest:
    return ScrapeRequest(url=url, mode="sync", timeout_s=60, **options)


def _hits(hidden: SandboxWorld) -> int:
    return int(httpx.get(f"{hidden.url('hidden')}/hits", timeout=30).text)


def test_browser_engine_renders_js_with_screenshot_trace_and_metering(
    world: SandboxWorld, stack: Stack, client: Client
) -> None:
    """engine=browser on a JS-rendered page extracts the rendered content; the screenshot and
    the Playwright trace download through the API (only for the job's tenant); the job is
    metered at the browser tier."""
    url = f"{world.url('scrape-js')}/product/5"
    request = _sync(url, engine="browser", extract=RULES, screenshot=True, trace=True)
    job = _ended(client, client.scrape(request))
    assert job.status == "succeeded", job.reason
    output = job.output or {}
    assert output["tier"] == "browser"
    assert output["extracted"]["title"]
    assert output["extracted"]["price"]
    shot = client.download_evidence(job.id, output["screenshot"]["evidence_id"])
    assert shot.startswith(b"\x89PNG")
    kinds = {e.kind for e in client.evidence(job.id).data}
    assert {"screenshot", "trace"} <= kinds
    trace = client.trace(job.id)
    assert trace.startswith(b"PK")
    with Client(stack.gateway_url, _key(stack), timeout=120.0) as other:
        with pytest.raises(NotFoundError):
            other.trace(job.id)
        with pytest.raises(NotFoundError):
            other.evidence(job.id)
    usage = client.usage()
    assert usage.by_tier["browser"].credits == 5
    assert usage.credits == 5


def test_auto_settles_on_the_browser_tier_where_plain_http_is_refused(
    world: SandboxWorld, client: Client
) -> None:
    """auto on the site refusing plain HTTP clients climbs to the browser and is metered at
    that tier (reserved at http); a static page stays on http, with no trace (404)."""
    guarded = _ended(client, client.scrape(_sync(f"{world.url('scrape-guarded')}/product/2",
                                                 extract=RULES)))  # fmt: skip
    assert guarded.status == "succeeded", guarded.reason
    output = guarded.output or {}
    assert output["tier"] == "browser"
    assert output["extracted"]["title"]
    assert output["attempts"][0]["rung"] == "http"
    plain = _ended(client, client.scrape(_sync(f"{world.url('scrape-static')}/product/2",
                                               extract=RULES)))  # fmt: skip
    assert plain.status == "succeeded", plain.reason
    assert (plain.output or {})["tier"] == "http"
    with pytest.raises(NotFoundError):
        client.trace(plain.id)
    usage = client.usage()
    assert usage.by_tier["browser"].credits == 5
    assert usage.by_tier["http"].credits == 1
    assert (usage.jobs, usage.credits) == (2, 6)


def test_the_ssrf_guard_holds_in_the_browser_rung(
    world: SandboxWorld, hidden: SandboxWorld, client: Client
) -> None:
    """In a browser, a redirect (direct or chained) to a non-allowlisted loopback address
    fails the job with the guard's reason, and an image from there is never fetched."""
    target = f"{hidden.url('hidden')}/embed?src=x"
    hop = f"{world.url('embedder')}/to?u={target}"
    chained = f"{world.url('embedder')}/to?u={httpx.URL(hop)}"
    for url in (hop, chained):
        job = _ended(client, client.scrape(_sync(url, engine="browser")))
        assert job.status == "failed", url
        assert "SSRF guard" in (job.reason or ""), job.reason
    page = f"{world.url('embedder')}/embed?src={hidden.url('hidden')}/pic.png"
    job = _ended(client, client.scrape(_sync(page, engine="browser", extract=RULES)))
    assert job.status == "succeeded", job.reason
    assert (job.output or {})["extracted"]["title"] == "Embed"
    assert _hits(hidden) == 0


def test_robots_txt_on_the_ladder_per_tenant(world: SandboxWorld, client: Client) -> None:
    """robots.txt is respected by default (a clear reason), and not once the tenant turns
    it off."""
    url = f"{world.url('scrape-static')}/private/4"
    refused = _ended(client, client.scrape(ScrapeRequest(url=url)))
    assert refused.status == "failed"
    assert "robots.txt disallows" in (refused.reason or "")
    client.set_scrape_settings(respect_robots=False)
    allowed = _ended(client, client.scrape(_sync(url, extract=RULES)))
    assert allowed.status == "succeeded", allowed.reason
    assert client.usage().by_tier["unserved"].credits == 0


def test_the_demo_scenario_batches_the_scrape_sites_through_the_api(
    world: SandboxWorld, stack: Stack
) -> None:
    """The demo's scrape scenario (on a smaller mix than the demo's ~100 URLs): a batch through
    /v1/batch, ≥ 99 % succeeded, each site on its cheapest tier, every job metered by the tier
    that served it, none left pending."""
    from portwright.sandbox.demo.scrape import run

    lines: list[str] = []
    progress: Callable[[str], None] = lines.append
    mix = {"scrape-static": 8, "scrape-js": 4, "scrape-guarded": 4, "scrape-captcha": 4}
    result = asyncio.run(run(stack, world, progress, mix=mix))
    summary = "\n".join([*lines, *result.lines])
    assert result.ok, summary
    assert "scrape-static settled on http" in summary
    assert "scrape-js settled on browser" in summary
    assert "scrape-guarded settled on browser" in summary
    assert "credits by tier: " in summary


def test_session_proxy_tier_and_country_pick_the_identity(
    world: SandboxWorld, client: Client
) -> None:
    """A session id keeps one proxy of the asked tier across scrapes; a country narrows the
    choice to that country's proxies."""
    url = f"{world.url('scrape-static')}/product/9"
    sticky = {"engine": "http", "session_id": "s-1", "proxy_tier": "residential"}
    jobs = [_ended(client, client.scrape(_sync(url, **sticky))) for _ in range(3)]
    assert all(j.status == "succeeded" for j in jobs), [j.reason for j in jobs]
    outputs = [j.output or {} for j in jobs]
    assert {o["proxy_tier"] for o in outputs} == {"residential"}
    assert len({o["proxy"] for o in outputs}) == 1
    french = {"engine": "http", "proxy_tier": "residential", "proxy_country": "FR"}
    job = _ended(client, client.scrape(_sync(url, **french)))
    assert job.status == "succeeded", job.reason
    assert (job.output or {})["proxy"] == "proxy-res-3"
