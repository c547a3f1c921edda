"""The fleet inside orchestrated jobs: browser steps leave evidence; ladder failures escalate."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from portwright.adapters import AdapterRegistry
from portwright.engines import Fleet, FleetConfig
from portwright.engines.browser import BrowserPool, PoolConfig, browser_processes, trace_ordinals
from portwright.engines.ladder import LadderConfig, Rule
from portwright.orchestrator import JobService
from portwright.resources import (
    ProxyPool,
    SolverChain,
    StaticProxyList,
    TwoCaptchaSolver,
)
from portwright.resources.vault import MasterKey, Vault
from portwright.sandbox import SandboxWorld, captcha, proxies, scrape
from portwright.sandbox.proxies import proxy_catalog
from portwright.sdk import Adapter, Job, RetryPolicy, StepContext, linear_machine
from portwright.settings import Settings
from portwright.testing import InMemoryBlobStore, wait_until
from tests.engines._sites import account_site
from tests.support import reaching

pytestmark = pytest.mark.browser

ServiceFor = Callable[..., JobService]
SECRET = "hunter2-very-secret"


class UrlInput(BaseModel):
    url: str
    engine: str = "auto"


async def _sign_in(sc: StepContext, url: str) -> str:
    page = await sc.browser()
    await page.goto(f"{url}/form")
    password = await sc.secret("portal-password")
    await page.fill("#email", password)  # a secret typed into a visible field, on purpose
    await page.fill("#password", password)
    await page.goto(f"{url}/set?v=session-42")
    return await page.inner_text("#who")


async def _read_back(sc: StepContext, url: str) -> str:
    page = await sc.browser()
    await page.goto(f"{url}/whoami")
    return await page.inner_text("#who")


class BrowseAdapter(Adapter[UrlInput]):
    """Signs in with a secret in one browser step and reads its cookie back in the next."""

    name: ClassVar[str] = "browse"
    input_model = UrlInput
    machine = linear_machine("browse", ["BROWSING"])
    retry = RetryPolicy(max_attempts=2, base_delay_s=0.05, max_delay_s=0.1)

    async def run(self, job: Job[UrlInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("BROWSING")
        first = await job.step("sign-in", _sign_in, job.input.url)
        second = await job.step("read-back", _read_back, job.input.url)
        return {"first": first, "second": second}


async def _fetch(sc: StepContext, url: str, engine: str) -> dict[str, Any]:
    result = await sc.fetch(url, engine=engine, extract={"title": Rule("h1.title")})
    return result.summary()


class FetchAdapter(Adapter[UrlInput]):
    """One ladder fetch in one step."""

    name: ClassVar[str] = "fetch"
    input_model = UrlInput
    machine = linear_machine("fetch", ["FETCHING"])
    retry = RetryPolicy(max_attempts=2, base_delay_s=0.05, max_delay_s=0.1, max_rotations=2)

    async def run(self, job: Job[UrlInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("FETCHING")
        return await job.step("fetch", _fetch, job.input.url, job.input.engine)


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    specs = [
        account_site(),
        *scrape.specs(),
        *captcha.specs({"solve_time_s": 0.05}),
        *proxies.specs(),
    ]
    with SandboxWorld(specs, seed=11) as w:
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)


def _registry() -> AdapterRegistry:
    reg = AdapterRegistry()
    reg.register(BrowseAdapter)
    reg.register(FetchAdapter)
    return reg


def _fleet(world: SandboxWorld, *, solver_url: str | None = None) -> Fleet:
    chain = SolverChain(
        {"sandbox": TwoCaptchaSolver(solver_url or world.url("captcha-solver"), "sandbox-key")}
    )
    return Fleet(
        browsers=BrowserPool(config=PoolConfig(max_browsers=1, idle_close_s=30)),
        proxies=ProxyPool([StaticProxyList.from_catalog("sandbox", proxy_catalog(world))]),
        captcha=chain,
        config=FleetConfig(ladder=LadderConfig(timeout_s=10.0)),
    )


async def _parked(svc: JobService, job_id: str) -> Any:
    async def check() -> Any:
        escalations = svc.store.jobs.escalations(job_id=job_id)
        return escalations[0] if escalations else None

    return await wait_until(check, timeout=60)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_browser_steps_leave_evidence_a_job_trace_and_carry_their_session(
    service_for: ServiceFor, world: SandboxWorld, db_url: str
) -> None:
    """Each browser step records screenshot, DOM and log; one trace spans both; secrets masked.
    The session carried between the steps is stored sealed by the vault. Stopping the
    runtime closes the fleet: no Chromium is left behind."""
    before = {p.pid for p in browser_processes()}
    blobs = InMemoryBlobStore()
    vault = Vault(MasterKey(MasterKey.generate()), database_url=db_url)
    svc = service_for(_registry(), fleet=_fleet(world), blobs=blobs, secrets=vault)
    tenant = svc.store.tenants.ensure("acme")
    vault.put(tenant.id, "portal-password", SECRET)
    job = await svc.submit(
        tenant_id=tenant.id, adapter="browse", input={"url": world.url("account")}
    )

    async def done() -> Any:
        record = await svc.get(job.id)
        return record if record.status in ("succeeded", "failed") else None

    record = await wait_until(done, timeout=90)
    assert record.state == "SUCCEEDED", record.reason
    assert record.output == {"first": "session-42", "second": "session-42"}
    evidence = svc.store.jobs.evidence(job.id)
    kinds = sorted(e.kind for e in evidence)
    assert kinds.count("screenshot") == 2
    assert kinds.count("dom") == 2
    assert kinds.count("step-log") == 2
    assert kinds.count("trace") == 1
    for row in evidence:
        data = blobs.get(row.blob_key)
        assert SECRET.encode() not in data, row.kind
    dom = next(e for e in evidence if e.kind == "dom" and e.step == "read-back")
    assert b"session-42" in blobs.get(dom.blob_key)
    [trace] = [e for e in evidence if e.kind == "trace"]
    archive = blobs.get(trace.blob_key)
    assert trace_ordinals(archive) == [1, 2]
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert b"#password" in zf.read("1-trace.trace")
    state = blobs.get(f"{tenant.id}/{job.id}/browser-state.json")
    assert state.startswith(b"pwseal1:")
    assert b"session-42" not in state
    assert b"session-42" in vault.open_blob(
        tenant.id, state, context=f"{tenant.id}/{job.id}/browser-state.json"
    )
    vault.close()
    svc.rt.stop()
    await wait_until(lambda: not {p.pid for p in browser_processes()} - before, timeout=10)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_ladder_with_every_identity_banned_escalates_instead_of_looping(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """Banned identities are burned, then the exhausted pool parks the job for a person."""
    datacenter = [p["name"] for p in proxy_catalog(world) if p["tier"] == "datacenter"]
    world.chaos("scrape-static").update({"banned_identities": datacenter})
    try:
        fleet = _fleet(world)
        svc = service_for(_registry(), fleet=fleet)
        tenant = svc.store.tenants.ensure("acme")
        url = f"{world.url('scrape-static')}/product/5"
        job = await svc.submit(
            tenant_id=tenant.id, adapter="fetch", input={"url": url, "engine": "http"}
        )
        escalation = await _parked(svc, job.id)
        assert escalation.kind == "blocked"
        assert (await svc.get(job.id)).state == "OPERATOR_ACTION_REQUIRED"
        burns = {b.proxy for b in svc.store.fleet.active_burns()}
        assert burns == set(datacenter)
        assert world.ledger("proxy-res-1").entries("request") == []
    finally:
        world.chaos("scrape-static").update({"banned_identities": []})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_captcha_with_its_solver_down_goes_to_an_operator(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """With the 2captcha-compatible service down, the captcha wall is escalated as a challenge."""
    world.chaos("captcha-solver").update({"down": True})
    try:
        svc = service_for(_registry(), fleet=_fleet(world))
        tenant = svc.store.tenants.ensure("acme")
        url = f"{world.url('scrape-captcha')}/product/8"
        job = await svc.submit(
            tenant_id=tenant.id, adapter="fetch", input={"url": url, "engine": "http"}
        )
        escalation = await _parked(svc, job.id)
        assert escalation.kind == "challenge"
        assert "operator" in escalation.reason
    finally:
        world.chaos("captcha-solver").update({"down": False})
