"""Engine bugs seen by operators at scale, each pinned on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest
import structlog
from pydantic import BaseModel

from portwright.orchestrator import JobService
from portwright.resilience import BreakerPolicy
from portwright.sdk import Adapter, Job, JobError, RateLimitedError, linear_machine
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


LIMITED: dict[str, int] = {}


class LimitedInput(BaseModel):
    limited: int = 4  # 429s before the portal answers


async def _limited(_sc: Any, job_id: str, limited: int) -> str:
    calls = LIMITED[job_id] = LIMITED.get(job_id, 0) + 1
    if calls <= limited:
        raise RateLimitedError("429 Too Many Requests", retry_after=0.2)
    return "booked"


class LimitedAdapter(Adapter[LimitedInput]):
    """Its one step is rate-limited a few times (Retry-After 0.2 s), then succeeds."""

    name: ClassVar[str] = "limited"
    input_model = LimitedInput
    machine = linear_machine("limited", ["WORKING"])

    async def run(self, job: Job[LimitedInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        return {"result": await job.step("book", _limited, job.id, job.input.limited)}


async def test_429s_cool_the_portal_down_without_opening_its_breaker_and_are_audited(
    service_for: ServiceFor,
) -> None:
    """A 429 is the portal answering: its cooldown honours Retry-After, and it no longer counts
    as a breaker failure (four 429s used to open a breaker of two calls at 50 % for its whole
    open time, far past Retry-After). Each extension is audited with its cause."""
    svc = service_for(
        registry(LimitedAdapter),
        breaker_policy=BreakerPolicy(window_s=30, min_calls=2, failure_rate=0.5, open_s=600),
    )
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(tenant_id=tenant.id, adapter="limited", input={"limited": 4})
    done = await _settled(svc, job.id)
    assert done.state == "SUCCEEDED"
    assert done.output == {"result": "booked"}
    assert svc.store.portals.breaker("portal:limited").state in (None, "closed")
    events = await svc.events(job.id)
    assert not [e for e in events if "circuit open" in (e.reason or "")]
    cooled = [e for e in events if e.to_state == "COOLDOWN" and e.kind == "transition"]
    assert cooled, "the job waited out the portal's cooldown"
    assert all("Retry-After 0.2s" in e.reason for e in cooled)
    audits = [
        a for a in svc.store.audit.search(target_id="limited") if a.action == "portal.cooldown"
    ]
    assert len(audits) == 4, audits
    assert {a.after["cause"] for a in audits if a.after} == {"429"}
    assert {a.actor for a in audits} == {f"job:{job.id}"}


class WaitInput(BaseModel):
    pass


async def _book(_sc: Any) -> str:
    return "booked"


class WaitingAdapter(Adapter[WaitInput]):
    name: ClassVar[str] = "waiting"
    input_model = WaitInput
    machine = linear_machine("waiting", ["WORKING"])

    async def run(self, job: Job[WaitInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        return {"result": await job.step("book", _book)}


async def test_a_cooldown_extended_while_a_job_waits_is_on_its_timeline_with_the_cause(
    service_for: ServiceFor,
) -> None:
    """A job already in COOLDOWN whose portal's window is extended (here by an operator)
    records the extension on its timeline (it used to wait on in silence), and the portal's
    audit trail has both extensions with their cause."""
    svc = service_for(registry(WaitingAdapter))
    tenant = svc.store.tenants.ensure("acme")
    first_end = time.time() + 3.0
    svc.store.portals.extend_cooldown(
        "waiting", until=first_end, reason="maintenance window", cause="operator", actor="op:ann"
    )
    job = await svc.submit(tenant_id=tenant.id, adapter="waiting", input={})

    async def cooling() -> Any:
        return [e for e in await svc.events(job.id) if e.to_state == "COOLDOWN"] or None

    await wait_until(cooling, timeout=15)
    svc.store.portals.extend_cooldown(
        "waiting", until=first_end + 1.0, reason="maintenance runs late", cause="operator",
        actor="op:ann",
    )  # fmt: skip
    done = await _settled(svc, job.id)
    assert done.state == "SUCCEEDED"
    events = await svc.events(job.id)
    [entered] = [e for e in events if e.to_state == "COOLDOWN" and e.kind == "transition"]
    assert entered.reason == "portal cooling down: maintenance window"
    [extended] = [e for e in events if (e.reason or "").startswith("cooldown extended")]
    assert extended.reason == "cooldown extended: portal cooling down: maintenance runs late"
    assert extended.meta["until"] == pytest.approx(first_end + 1.0)
    assert extended.meta["was_until"] == pytest.approx(first_end)
    audits = [
        a for a in svc.store.audit.search(target_id="waiting") if a.action == "portal.cooldown"
    ]
    assert [(a.actor, a.reason, (a.after or {}).get("cause")) for a in audits] == [
        ("op:ann", "maintenance runs late", "operator"),
        ("op:ann", "maintenance window", "operator"),
    ]


class OutageInput(BaseModel):
    fail_first: int = 2


_TRIES: dict[str, int] = {}


def _unreachable_database() -> None:
    """Raise what a step gets when the platform's database has gone away under it: a real
    connection refused by a closed port, through SQLAlchemy and psycopg."""
    import socket

    import sqlalchemy as sa

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when this block ends: nobody listens
    engine = sa.create_engine(f"postgresql+psycopg://pw@127.0.0.1:{port}/gone")
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


async def _observe(sc: Any, key: str, fail_first: int) -> str:
    _TRIES[key] = _TRIES.get(key, 0) + 1
    if _TRIES[key] <= fail_first:
        await asyncio.to_thread(_unreachable_database)
    return "observed"


class OutageAdapter(Adapter[OutageInput]):
    """Its step writes to the database (as the consulate's scan records a slot observation)
    and the database is down for its first attempts."""

    name: ClassVar[str] = "outage"
    input_model = OutageInput
    machine = linear_machine("outage", ["SCANNING"])

    async def run(self, job: Job[OutageInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("SCANNING")
        return {"value": await job.step("scan", _observe, job.id, job.input.fail_first)}


async def test_a_database_outage_inside_a_step_is_retried_not_escalated(
    service_for: ServiceFor,
) -> None:
    """A step that fails because the database is unreachable (a restart: the R1 chaos run
    stops PostgreSQL mid-run) is a transient failure, retried once it is back. It used to be
    an "unexpected error" that parked the job in OPERATOR_ACTION_REQUIRED for a person."""
    svc = service_for(registry(OutageAdapter))
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(tenant_id=tenant.id, adapter="outage", input={"fail_first": 2})
    done = await _settled(svc, job.id)
    assert (done.state, done.output) == ("SUCCEEDED", {"value": "observed"})
    assert _TRIES[job.id] == 3
    events = await svc.events(job.id)
    assert "OPERATOR_ACTION_REQUIRED" not in {e.to_state for e in events}
    retries = [e.reason for e in events if e.to_state == "RETRY_WAIT"]
    assert len(retries) == 2
    assert all("database unavailable in scan: OperationalError" in r for r in retries)
    assert await svc.escalations(job_id=job.id) == []
