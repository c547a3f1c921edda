"""Engine bugs seen by operators at scale, each pinned on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from portwright.orchestrator import JobService
from portwright.sdk import Adapter, Job, linear_machine
from portwright.testing import wait_until
from tests.orchestrator._support import registry

ServiceFor = Callable[..., JobService]


class SelfEndInput(BaseModel):
    flush_first: bool = False


class SelfEndingAdapter(Adapter[SelfEndInput]):
    """Moves its job to the success state itself, then returns its output."""

    name: ClassVar[str] = "self-ending"
    input_model = SelfEndInput
    machine = linear_machine("self-ending", ["WORKING"])

    async def run(self, job: Job[SelfEndInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        await job.transition("SUCCEEDED", "booked")
        if job.input.flush_first:
            await job.progress()  # writes the terminal transition before the output is known
        return {"booking": "B-42", "flushed": job.input.flush_first}


async def _settled(svc: JobService, job_id: str) -> Any:
    async def done() -> Any:
        job = await svc.get(job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return await wait_until(done, timeout=30)


async def test_an_adapter_that_ends_its_job_itself_keeps_its_output(
    service_for: ServiceFor,
) -> None:
    """`output` is what `run` returned, whether or not the adapter's own terminal transition
    was written before `run` returned (it used to be null)."""
    svc = service_for(registry(SelfEndingAdapter))
    tenant = svc.store.tenants.ensure("acme")
    for flush_first in (False, True):
        job = await svc.submit(
            tenant_id=tenant.id, adapter="self-ending", input={"flush_first": flush_first}
        )
        done = await _settled(svc, job.id)
        assert done.state == "SUCCEEDED"
        assert done.output == {"booking": "B-42", "flushed": flush_first}
        ended = [e for e in await svc.events(job.id) if e.to_state == "SUCCEEDED"]
        assert [e.reason for e in ended] == ["booked"]
