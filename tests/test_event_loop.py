"""The long-running commands' event loop: uvloop where it is installed (`event_loop`
setting), and a worker on it runs jobs and chunked batches (curl_cffi's sockets, DBOS's
steps and thread hops) as on asyncio's."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
import uvloop
from pydantic import BaseModel, SecretStr

from portwright import _loop
from portwright._loop import use_event_loop
from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.gateway import UrlGuard
from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld
from portwright.sandbox.scrape import specs as scrape_specs
from portwright.sdk import Adapter, Job, linear_machine
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.conftest import RuntimeFactory


@pytest.fixture
def restore_policy() -> Iterator[None]:
    before = asyncio.get_event_loop_policy()
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(before)


def _loop_kind() -> str:
    loop = asyncio.new_event_loop()
    try:
        return type(loop).__module__.split(".")[0]
    finally:
        loop.close()


def test_auto_takes_uvloop_when_installed(restore_policy: None) -> None:
    assert use_event_loop("auto") == "uvloop"
    assert _loop_kind() == "uvloop"


def test_asyncio_keeps_pythons_loop(restore_policy: None) -> None:
    assert use_event_loop("asyncio") == "asyncio"
    assert _loop_kind() == "asyncio"


def test_auto_without_uvloop_keeps_asyncio(
    restore_policy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_loop, "_uvloop_available", lambda: False)
    assert use_event_loop("auto") == "asyncio"
    assert _loop_kind() == "asyncio"


def test_an_unknown_loop_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'trio' is not one of auto, uvloop, asyncio"):
        use_event_loop("trio")
    with pytest.raises(ValueError, match="event_loop"):
        Settings(event_loop="trio")  # type: ignore[arg-type]


class LoopInput(BaseModel):
    pass


async def _which_loop(_sc: Any) -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


class LoopAdapter(Adapter[LoopInput]):
    name: ClassVar[str] = "which-loop"
    input_model = LoopInput
    machine = linear_machine("which-loop", ["LOOKING"])

    async def run(self, job: Job[LoopInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("LOOKING")
        return {"loop": await job.step("look", _which_loop)}


def test_a_worker_on_uvloop_runs_jobs_and_a_chunked_batch(
    restore_policy: None, make_runtime: RuntimeFactory, settings: Settings
) -> None:
    """DBOS's loop (made when the runtime starts) is uvloop once the command chose it; a
    job's step runs there, and a batch of the scrape adapter (chunks: curl_cffi on that
    loop, the record step's thread hops) ends with every page fetched and recorded."""
    specs = [
        dataclasses.replace(s, options={**s.options, "rate_per_s": 0})
        for s in scrape_specs()
        if s.name == "scrape-static"
    ]
    with SandboxWorld(specs, seed=14) as world:
        site = world.url("scrape-static")
        settings = settings.model_copy(
            update={
                "master_key": SecretStr("test-master-key-" + "x" * 32),
                "url_allowlist": [site.removeprefix("http://")],
            }
        )
        registry = AdapterRegistry()
        registry.register(LoopAdapter)
        registry.register(ScrapeAdapter.with_guard(UrlGuard.from_allowlist(settings.url_allowlist)))
        assert use_event_loop("uvloop") == "uvloop"
        service = JobService(make_runtime(registry, settings=settings))
        tenant = service.store.tenants.ensure("acme").id
        urls = [f"{site}/product/{i}" for i in range(1, 121)]
        items = [{"url": url, "engine": "http"} for url in urls]

        async def submit() -> tuple[str, list[str]]:
            job = await service.submit(tenant_id=tenant, adapter="which-loop", input={})
            batch = await service.submit_many(tenant_id=tenant, adapter="scrape", inputs=items)
            return job.id, [j.id for j in batch]

        job_id, ids = uvloop.run(submit())
        store = service.store

        def ended() -> bool:
            jobs = store.jobs.get_many([job_id, *ids])
            return all(j.status in ("succeeded", "failed", "cancelled") for j in jobs)

        wait_until_sync(ended, timeout=120, every=0.2)
        job = store.jobs.get(job_id)
        assert (job.status, job.output) == ("succeeded", {"loop": "uvloop"})
        pages = store.jobs.get_many(ids)
        assert {j.status for j in pages} == {"succeeded"}
        assert {j.input["url"]: j.output["url"] for j in pages} == {u: u for u in urls}
        assert all((j.notes or {}).get("chunk") for j in pages)  # they ran as chunks
