"""A worker with no Chromium: the lookup says so (or is told to look nowhere), the ladder
stops at its highest tier and fails a URL that needs a browser at once with a clear reason,
and browser steps fail saying what is missing, not which class was built without what."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from portwright.adapters import AdapterRegistry
from portwright.engines import Fleet, FleetConfig
from portwright.engines._chromium import (
    KNOWN_PATHS,
    ChromiumDisabledError,
    ChromiumNotFoundError,
    find_chromium,
)
from portwright.engines.ladder import Ladder, LadderConfig, MemoryTierMemory, Rule
from portwright.orchestrator import JobService
from portwright.resources import ProxyPool, StaticProxyList
from portwright.sandbox import SandboxWorld, proxies, scrape
from portwright.sandbox.proxies import proxy_catalog
from portwright.sdk import Adapter, Job, PermanentError, RetryPolicy, StepContext, linear_machine
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.support import reaching

RULES = {"title": Rule("h1.title"), "price": Rule("span.price", attribute="data-amount")}
HIDDEN = {"PORTWRIGHT_CHROMIUM": "/nonexistent/chromium", "PORTWRIGHT_CHROMIUM_SEARCH": "none"}


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\necho 'Chromium 1.0'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# -- finding Chromium -------------------------------------------------------------------------


def test_the_search_paths_can_be_replaced_or_emptied(tmp_path: Path) -> None:
    """PORTWRIGHT_CHROMIUM_SEARCH stands in for the known paths; `none` searches nowhere, so
    a wrong PORTWRIGHT_CHROMIUM finds nothing and the error says where it looked, what to do."""
    mine = _executable(tmp_path / "my-chromium")
    search = os.pathsep.join([str(tmp_path / "absent"), str(mine)])
    assert find_chromium(env={"PORTWRIGHT_CHROMIUM_SEARCH": search}) == str(mine)
    with pytest.raises(ChromiumNotFoundError) as caught:
        find_chromium(env=HIDDEN)
    message = str(caught.value)
    assert "tried: /nonexistent/chromium)" in message
    assert not any(known in message for known in KNOWN_PATHS)
    assert "apt-get install chromium" in message
    assert "PORTWRIGHT_CHROMIUM" in message
    assert not isinstance(caught.value, ChromiumDisabledError)


def test_an_explicit_path_comes_before_the_environment_and_the_search(tmp_path: Path) -> None:
    first = _executable(tmp_path / "first")
    second = _executable(tmp_path / "second")
    env = {"PORTWRIGHT_CHROMIUM": str(second), "PORTWRIGHT_CHROMIUM_SEARCH": str(second)}
    assert find_chromium(first, env=env) == str(first)
    assert find_chromium(env=env) == str(second)


def test_portwright_chromium_none_switches_browsers_off(tmp_path: Path) -> None:
    """A user's opt-out: no lookup at all, even with a Chromium on the search path."""
    there = _executable(tmp_path / "chromium")
    for env in (
        {"PORTWRIGHT_CHROMIUM": "none", "PORTWRIGHT_CHROMIUM_SEARCH": str(there)},
        {"PORTWRIGHT_CHROMIUM": "None"},
    ):
        with pytest.raises(ChromiumDisabledError, match=r"switched off \(PORTWRIGHT_CHROMIUM"):
            find_chromium(env=env)
    with pytest.raises(ChromiumDisabledError):
        find_chromium("none", env={"PORTWRIGHT_CHROMIUM_SEARCH": str(there)})


# -- the ladder with no browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([*scrape.specs(), *proxies.specs()], seed=41) as w:
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)


def _pool(world: SandboxWorld) -> ProxyPool:
    return ProxyPool([StaticProxyList.from_catalog("sandbox", proxy_catalog(world))])


async def test_a_ladder_without_a_browser_fails_a_url_that_needs_one_with_the_reason(
    world: SandboxWorld,
) -> None:
    """The guarded site (refuses HTTP clients) and the script-rendered one end on the HTTP
    tiers with a PermanentError that says a browser is needed and none is installed; a
    server-rendered page is still fetched, and `engine="http"` still returns what HTTP got."""
    async with Ladder(
        proxies=_pool(world), memory=MemoryTierMemory(), config=LadderConfig(timeout_s=10.0)
    ) as ladder:
        assert [r.name for r in ladder.rungs_for("auto")] == ["http", "http-tls"]
        guarded = f"{world.url('scrape-guarded')}/product/3"
        with pytest.raises(PermanentError) as caught:
            await ladder.fetch(guarded, extract=RULES, job_id="job-guarded")
        reason = caught.value.message
        assert "needs a browser (it refuses clients that are not browsers)" in reason
        assert "none is installed on this worker" in reason
        assert world.url("scrape-guarded") in reason
        assert caught.value.details["needs_browser"] is True
        assert set(caught.value.details["attempts"]) <= {"blocked", "exhausted"}

        rendered = f"{world.url('scrape-js')}/product/3"
        with pytest.raises(PermanentError, match=r"needs a browser \(the content asked for"):
            await ladder.fetch(rendered, extract=RULES)

        static = await ladder.fetch(f"{world.url('scrape-static')}/product/3", extract=RULES)
        assert static.rung == "http"
        assert static.extracted["title"]
        shell = await ladder.fetch(rendered, engine="http", extract=RULES)
        assert shell.extracted == {"title": None, "price": None}


# -- orchestrated jobs on a worker with no browser -------------------------------------------


class UrlInput(BaseModel):
    url: str


async def _fetch(sc: StepContext, url: str) -> dict[str, Any]:
    return (await sc.fetch(url, extract=RULES)).summary()


async def _browse(sc: StepContext, url: str) -> str:
    page = await sc.browser()
    await page.goto(url)
    return "unreachable"


class FetchAdapter(Adapter[UrlInput]):
    name: ClassVar[str] = "fetch"
    input_model = UrlInput
    machine = linear_machine("fetch", ["FETCHING"])
    retry = RetryPolicy(max_attempts=2, base_delay_s=0.05, max_delay_s=0.1, max_rotations=2)

    async def run(self, job: Job[UrlInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("FETCHING")
        return await job.step("fetch", _fetch, job.input.url)


class BrowseAdapter(Adapter[UrlInput]):
    name: ClassVar[str] = "browse"
    input_model = UrlInput
    machine = linear_machine("browse", ["BROWSING"])
    retry = RetryPolicy(max_attempts=2, base_delay_s=0.05, max_delay_s=0.1)

    async def run(self, job: Job[UrlInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("BROWSING")
        return {"page": await job.step("browse", _browse, job.input.url)}


async def test_jobs_needing_a_browser_fail_at_once_with_a_reason_a_user_reads(
    service_for: Callable[..., JobService], world: SandboxWorld
) -> None:
    """On a fleet without browsers, a scrape of the guarded site and a browser step both end
    FAILED (not parked for a person), saying a browser is needed and none is installed, with
    no internal class names in the reason."""
    registry = AdapterRegistry()
    registry.register(FetchAdapter)
    registry.register(BrowseAdapter)
    fleet = Fleet(proxies=_pool(world), config=FleetConfig(ladder=LadderConfig(timeout_s=10.0)))
    svc = service_for(registry, fleet=fleet)
    tenant = svc.store.tenants.ensure("acme")
    url = f"{world.url('scrape-guarded')}/product/9"
    fetch = await svc.submit(tenant_id=tenant.id, adapter="fetch", input={"url": url})
    browse = await svc.submit(tenant_id=tenant.id, adapter="browse", input={"url": url})

    async def ended() -> list[Any] | None:
        jobs = [await svc.get(fetch.id), await svc.get(browse.id)]
        if all(j.status in ("succeeded", "failed", "cancelled") for j in jobs):
            return jobs
        if any(j.state == "OPERATOR_ACTION_REQUIRED" for j in jobs):
            return jobs  # parked: the assertions below say so
        return None

    fetched, browsed = await wait_until(ended, timeout=90)
    assert (fetched.state, browsed.state) == ("FAILED", "FAILED")
    assert "this site needs a browser" in (fetched.reason or "")
    assert "none is installed on this worker" in (fetched.reason or "")
    assert "this job needs a browser and none is installed on this worker" in (browsed.reason or "")
    assert "PORTWRIGHT_CHROMIUM" in (browsed.reason or "")
    for reason in (fetched.reason or "", browsed.reason or ""):
        assert "Runtime(" not in reason
        assert "fleet" not in reason.lower()
    assert svc.store.jobs.escalations(job_id=fetch.id) == []
    assert svc.store.jobs.escalations(job_id=browse.id) == []
