"""Per-site isolation of the scrape portal (issue 16): one site's 429 cools down that site
only, and a tenant's own identity's 429 that tenant's jobs there only; the engine tiers
each have a queue of their own. Against two real sandbox sites, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.console._views import dashboard
from portwright.engines import Fleet, FleetConfig
from portwright.engines.browser import BrowserPool, PoolConfig, RemoteCdp
from portwright.engines.ladder import LadderConfig
from portwright.observability import Metrics
from portwright.orchestrator import JobService
from portwright.resources.ssrf import UrlGuard
from portwright.sandbox import ChaosKnobs, SandboxWorld
from portwright.sandbox.scrape import specs as scrape_specs
from portwright.settings import Settings
from portwright.store import site_name
from portwright.testing import wait_until
from tests.support import reaching

ServiceFor = Callable[..., JobService]
ENDED = ("succeeded", "failed", "cancelled")


def _site(name: str, **options: Any) -> Any:
    static = next(s for s in scrape_specs() if s.name == "scrape-static")
    return dataclasses.replace(static, name=name, options={**static.options, **options})


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    # site-a: one request, then 429 with a Retry-After of ~100 s; site-b: no limit at all;
    # site-c: down (503 to everything)
    specs = [
        _site("site-a", rate_per_s=0.01, burst=1),
        _site("site-b", rate_per_s=0),
        dataclasses.replace(_site("site-c", rate_per_s=0), knobs=ChaosKnobs(down=True)),
    ]
    with SandboxWorld(specs, seed=16) as w:
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    return reaching(settings, world).model_copy(
        update={"tier_concurrency": {"http": 6, "browser": 1, "stealth": 1}}
    )


def _registry(settings: Settings) -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(ScrapeAdapter.with_guard(UrlGuard.from_allowlist(settings.url_allowlist)))
    return registry


def _host(url: str) -> str:
    return url.removeprefix("http://")


async def _submit(svc: JobService, tenant: str, url: str, **extra: Any) -> str:
    job = await svc.submit(
        tenant_id=tenant,
        adapter="scrape",
        input={"url": url, "respect_robots": False, **extra},
    )
    return job.id


async def _cooling(svc: JobService, name: str) -> bool:
    rows = svc.store.sites.get_many([name])
    return bool(rows) and (rows[0].cooldown_until or 0) > time.time()


@pytest.mark.timeout(300)
async def test_one_sites_429_slows_that_site_only(
    service_for: ServiceFor, settings: Settings, world: SandboxWorld
) -> None:
    """Site A answers 429: A's jobs cool down on A's own row, while every job of site B —
    submitted after A started cooling — runs straight through: no cooldown state, no
    wait, the portal itself never cooling; A's cooldown is still on when B is done."""
    svc = service_for(_registry(settings))
    tenant = svc.store.tenants.ensure("acme").id
    a, b = world.url("site-a"), world.url("site-b")
    a_jobs = [await _submit(svc, tenant, f"{a}/product/{i}") for i in range(1, 4)]
    a_site = site_name("scrape", _host(a))

    def a_cooling() -> bool:
        return any(e.to_state == "COOLDOWN" for j in a_jobs for e in svc.store.jobs.events(j))

    await wait_until(a_cooling, timeout=90)

    b_jobs = [await _submit(svc, tenant, f"{b}/product/{i}") for i in range(1, 11)]

    async def b_done() -> bool:
        return all(j.status in ENDED for j in svc.store.jobs.get_many(b_jobs))

    await wait_until(b_done, timeout=120, every=0.1)
    assert await _cooling(svc, a_site), "site A's cooldown ran out: the test proves nothing"
    for job in svc.store.jobs.get_many(b_jobs):
        assert job.status == "succeeded", (job.id, job.reason)
        states = [e.to_state for e in svc.store.jobs.events(job.id)]
        assert "COOLDOWN" not in states, (job.id, states)
    portal = svc.store.portals.get("scrape")
    assert portal.cooldown_until is None or portal.cooldown_until < time.time()
    assert not svc.store.sites.get_many([site_name("scrape", _host(b))])
    # A's jobs: at least one waited in COOLDOWN for site A (not the portal), none succeeded
    a_records = svc.store.jobs.get_many(a_jobs)
    reasons = [
        e.reason
        for job in a_records
        for e in svc.store.jobs.events(job.id)
        if e.to_state == "COOLDOWN" and e.kind == "transition"
    ]
    assert reasons, [j.status for j in a_records]
    assert all(r.startswith(f"site cooling down: site {_host(a)}") for r in reasons), reasons
    assert sum(j.status == "succeeded" for j in a_records) <= 1
    # what staff see: the console's portal card lists site A cooling down, and so do metrics
    board = dashboard(svc.store, tenant_id=None)
    shown = {site: status for portal, site, status in board.sites if portal == "scrape"}
    assert shown[_host(a)].startswith("cooling down until"), shown
    assert _host(b) not in shown
    exposition = Metrics(svc.store).render().decode()
    assert (
        f'portwright_site_cooling_down{{portal="scrape",site="{_host(a)}",tenant=""}} 1.0'
        in exposition
    )
    assert f'site="{_host(b)}"' not in exposition


@pytest.mark.timeout(300)
async def test_a_failing_sites_breaker_and_degraded_mark_are_its_own(
    service_for: ServiceFor, settings: Settings, world: SandboxWorld
) -> None:
    """Site C answers 503 to everything: its jobs' transient failures open C's breaker and
    mark C degraded, not the portal's; site B's jobs, submitted once C's breaker is open,
    run straight through."""
    svc = service_for(_registry(settings))
    tenant = svc.store.tenants.ensure("acme").id
    b, c = world.url("site-b"), world.url("site-c")
    c_jobs = [await _submit(svc, tenant, f"{c}/product/{i}") for i in range(1, 6)]
    c_breaker = f"site:{site_name('scrape', _host(c))}"

    def tripped() -> bool:  # whichever breaker C's failures open
        names = (c_breaker, "portal:scrape")
        return any(svc.store.portals.breaker(n).state == "open" for n in names)

    await wait_until(tripped, timeout=120, every=0.1)
    assert svc.store.portals.breaker(c_breaker).state == "open"
    b_jobs = [await _submit(svc, tenant, f"{b}/product/{i}") for i in range(20, 26)]

    async def b_done() -> bool:
        return all(j.status in ENDED for j in svc.store.jobs.get_many(b_jobs))

    await wait_until(b_done, timeout=120, every=0.1)
    for job in svc.store.jobs.get_many(b_jobs):
        assert job.status == "succeeded", (job.id, job.reason)
        assert "COOLDOWN" not in [e.to_state for e in svc.store.jobs.events(job.id)]
    assert svc.store.portals.breaker("portal:scrape").state == "closed"
    assert svc.store.portals.get("scrape").degraded_since is None

    def c_degraded() -> bool:
        rows = svc.store.sites.get_many([site_name("scrape", _host(c))])
        return bool(rows) and rows[0].degraded_since is not None

    await wait_until(c_degraded, timeout=60)
    assert all(j.status != "succeeded" for j in svc.store.jobs.get_many(c_jobs))


@pytest.mark.timeout(300)
async def test_a_tenants_own_identity_429_cools_that_tenant_only(
    service_for: ServiceFor, settings: Settings, world: SandboxWorld
) -> None:
    """A 429 met on a tenant's sticky session is that tenant's: another tenant's jobs of
    the same site run on, without a cooldown."""
    svc = service_for(_registry(settings))
    acme = svc.store.tenants.ensure("acme").id
    other = svc.store.tenants.ensure("other").id
    a = world.url("site-a")
    mine = [await _submit(svc, acme, f"{a}/product/{i}", session_id="s1") for i in (1, 2)]
    own = site_name("scrape", _host(a), acme)
    await wait_until(lambda: _cooling(svc, own), timeout=90)
    assert not await _cooling(svc, site_name("scrape", _host(a)))
    # the other tenant's job reaches site A too: the bucket is empty, so it meets the 429
    # itself, but it is not held by acme's cooldown first (no "your use of" wait)
    theirs = await _submit(svc, other, f"{a}/product/9")

    async def settled_or_cooling() -> Any:
        job = svc.store.jobs.get(theirs)
        events = svc.store.jobs.events(theirs)
        return job.status in ENDED or any(e.to_state == "COOLDOWN" for e in events)

    await wait_until(settled_or_cooling, timeout=90)
    waits = [
        e.reason
        for e in svc.store.jobs.events(theirs)
        if e.to_state == "COOLDOWN" and e.kind == "transition"
    ]
    assert not any("your use of" in r for r in waits), waits
    # acme's job that met the 429 waits on acme's own row of the site
    acme_waits = [
        e.reason
        for job_id in mine
        for e in svc.store.jobs.events(job_id)
        if e.to_state == "COOLDOWN" and e.kind == "transition"
    ]
    assert acme_waits, "no acme job cooled down"
    assert all(r.startswith(f"site cooling down: your use of {_host(a)}") for r in acme_waits)


async def test_each_engine_tier_has_a_queue_with_its_own_cap(
    service_for: ServiceFor, settings: Settings, world: SandboxWorld
) -> None:
    """http (and "auto"), browser and stealth scrapes are enqueued on three queues, capped
    by `tier_concurrency`."""
    from dbos import DBOS

    svc = service_for(_registry(settings))
    tenant = svc.store.tenants.ensure("acme").id
    url = f"{world.url('site-b')}/product/1"
    jobs = {
        engine: await _submit(svc, tenant, url, engine=engine)
        for engine in ("auto", "http", "browser", "stealth")
    }
    found = await DBOS.list_workflows_async(workflow_ids=list(jobs.values()), load_input=False)
    queue_of = {status.workflow_id: status.queue_name for status in found}
    assert {engine: queue_of[job_id] for engine, job_id in jobs.items()} == {
        "auto": "portal-scrape-http",
        "http": "portal-scrape-http",
        "browser": "portal-scrape-browser",
        "stealth": "portal-scrape-stealth",
    }
    caps = {tier: svc.rt._queues[f"portal-scrape-{tier}"].global_concurrency for tier in
            ("http", "browser", "stealth")}  # fmt: skip
    assert caps == {"http": 6, "browser": 1, "stealth": 1}


@pytest.mark.timeout(300)
async def test_without_a_browser_pool_http_scrapes_run_and_browser_ones_wait_visibly(
    service_for: ServiceFor, settings: Settings, world: SandboxWorld
) -> None:
    """On a worker with no browser pool, scrapes for a browser tier (or a screenshot) wait:
    status waiting, for "browser", the reason on their timeline, once — neither failed nor
    silent — while HTTP scrapes submitted after them all succeed; a waiting one can be
    cancelled."""
    svc = service_for(_registry(settings))
    tenant = svc.store.tenants.ensure("acme").id
    b = world.url("site-b")
    browser = [
        await _submit(svc, tenant, f"{b}/product/1", engine="browser"),
        await _submit(svc, tenant, f"{b}/product/2", engine="stealth"),
        await _submit(svc, tenant, f"{b}/product/3", screenshot=True),
    ]

    async def all_waiting() -> bool:
        jobs = svc.store.jobs.get_many(browser)
        return all(j.status == "waiting" and j.waiting_for == "browser" for j in jobs)

    await wait_until(all_waiting, timeout=60)
    http = [await _submit(svc, tenant, f"{b}/product/{i}") for i in range(10, 16)]

    async def http_done() -> bool:
        return all(j.status in ENDED for j in svc.store.jobs.get_many(http))

    await wait_until(http_done, timeout=120, every=0.1)
    assert {j.status for j in svc.store.jobs.get_many(http)} == {"succeeded"}
    for job in svc.store.jobs.get_many(browser):
        assert job.status == "waiting", (job.id, job.status, job.reason)
        reasons = [e.reason for e in svc.store.jobs.events(job.id)]
        told = [r for r in reasons if r.startswith("waiting for a browser")]
        assert len(told) == 1, reasons
        assert "this worker has no browser pool" in told[0]
    await svc.cancel(browser[0], actor="test", reason="no browser coming")

    async def cancelled() -> bool:
        return svc.store.jobs.get(browser[0]).status == "cancelled"

    await wait_until(cancelled, timeout=60)


@pytest.mark.timeout(300)
async def test_when_every_browser_is_down_browser_scrapes_wait_and_http_ones_run(
    service_for: ServiceFor, settings: Settings, world: SandboxWorld
) -> None:
    """A fleet whose only browser provider is down (a remote CDP endpoint nobody listens
    on): a browser scrape does not fail after its retries but waits, status waiting for
    "browser", saying the browser could not start; an HTTP scrape on the same fleet runs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # closed again: nothing listens there
    fleet = Fleet(
        browsers=BrowserPool(
            RemoteCdp(f"http://127.0.0.1:{dead}", name="remote", timeout_s=2.0),
            PoolConfig(max_browsers=1),
        ),
        config=FleetConfig(ladder=LadderConfig(timeout_s=10.0)),
    )
    guard = UrlGuard.from_allowlist(settings.url_allowlist)
    registry = AdapterRegistry()
    registry.register(ScrapeAdapter.on_fleet(guard))
    svc = service_for(registry, settings=settings, fleet=fleet)
    tenant = svc.store.tenants.ensure("acme").id
    b = world.url("site-b")
    browser = await _submit(svc, tenant, f"{b}/product/1", engine="browser")

    async def waiting() -> bool:
        job = svc.store.jobs.get(browser)
        assert job.status not in ENDED, (job.status, job.reason)
        return job.status == "waiting" and job.waiting_for == "browser"

    await wait_until(waiting, timeout=120)
    http = await _submit(svc, tenant, f"{b}/product/2", engine="http")

    async def http_done() -> bool:
        return svc.store.jobs.get(http).status in ENDED

    await wait_until(http_done, timeout=60)
    assert svc.store.jobs.get(http).status == "succeeded", svc.store.jobs.get(http).reason
    reasons = [e.reason for e in svc.store.jobs.events(browser)]
    told = [r for r in reasons if r.startswith("waiting for a browser")]
    assert len(told) == 1, reasons
    assert "could not start" in told[0], told
    assert svc.store.jobs.get(browser).status == "waiting"
