"""Engine bugs seen by operators at scale, each pinned on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest
import structlog
from pydantic import BaseModel

from portwright.orchestrator import JobService
from portwright.sdk import Adapter, Job, JobError, linear_machine
from portwright.testing import wait_until, wait_until_sync
from tests.conftest import RuntimeFactory
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


class ParkInput(BaseModel):
    pass


async def _unsure(_sc: Any) -> str:
    raise JobError("two booking buttons, unsure which one")


class ParkingAdapter(Adapter[ParkInput]):
    """Its one step always asks an operator."""

    name: ClassVar[str] = "parking"
    input_model = ParkInput
    machine = linear_machine("parking", ["WORKING"])

    async def run(self, job: Job[ParkInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        return {"value": await job.step("choose", _unsure)}


def _escalated_lines(logs: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in logs
        if line.get("event") == "escalated to an operator" and line.get("job_id") == job_id
    ]


@pytest.mark.timeout(180)
def test_escalated_is_logged_once_not_again_when_a_restarted_worker_replays_the_job(
    make_runtime: RuntimeFactory,
) -> None:
    """A worker restart replays the parked job's workflow from its checkpoints: the
    "escalated to an operator" line is not logged again (it used to be, on every restart),
    and the recovered job still takes the operator's decision."""
    reg = registry(ParkingAdapter)
    with structlog.testing.capture_logs() as logs:
        first = make_runtime(reg)
        svc = JobService(first)
        tenant = first.store.tenants.ensure("acme")
        job = asyncio.run(svc.submit(tenant_id=tenant.id, adapter="parking", input={}))
        [esc] = wait_until_sync(
            lambda: first.store.jobs.escalations(job_id=job.id) or None, timeout=30
        )
        wait_until_sync(lambda: _escalated_lines(logs, job.id) or None, timeout=10)
        first.stop()

        second = make_runtime(reg)  # recovers the parked workflow, replaying its steps
        again = JobService(second)
        asyncio.run(again.decide(esc.id, "retry", actor="op:ann", reason="try once more"))
        # The recovered workflow took the decision and ran the step again: a new escalation.
        wait_until_sync(
            lambda: len(second.store.jobs.escalations(job_id=job.id)) == 2 or None, timeout=30
        )
        wait_until_sync(lambda: len(_escalated_lines(logs, job.id)) >= 2 or None, timeout=10)
        escalations = second.store.jobs.escalations(job_id=job.id)
    logged = [line["escalation_id"] for line in _escalated_lines(logs, job.id)]
    assert sorted(logged) == sorted(e.id for e in escalations), logged
    assert esc.id in logged
