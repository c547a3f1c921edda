"""One checkpoint per adapter step (issue 14): a step function that returned never runs
again because bookkeeping after it failed, and a no-op job costs few SQL statements."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from dbos import DBOS
from pydantic import BaseModel
from sqlalchemy import event

from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.sdk import Adapter, Job, StepContext, linear_machine
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.orchestrator._support import NoopAdapter, registry
from tests.support import reaching

ServiceFor = Callable[..., JobService]

STATEMENT_BUDGET = 40  # issue 14: a 3-step no-op job, submit to end


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([echo_service("echo")], seed=7) as w:
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)


class FailOnce:
    """A real database error on the store's engine: the `occurrence`-th statement that
    contains `prefix` raises OperationalError instead of running (then never again). On
    PostgreSQL a job's write is one statement whose inserts are CTEs: it contains them."""

    def __init__(self, engine: sa.Engine, prefix: str, occurrence: int = 1) -> None:
        self.engine, self.prefix, self.occurrence = engine, prefix.upper(), occurrence
        self.seen = 0
        self.fired = 0
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if self.prefix not in statement.upper():
            return
        self.seen += 1
        if self.seen == self.occurrence:
            self.fired += 1
            raise sa.exc.OperationalError(statement, {}, RuntimeError("injected fault"))

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)


async def _settled(svc: JobService, job_id: str) -> Any:
    async def done() -> Any:
        job = await svc.get(job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return await wait_until(done, timeout=60)


def _ok_outcomes(svc: JobService, breaker: str) -> int:
    from portwright.store._schema import breaker_outcomes

    query = sa.select(sa.func.coalesce(sa.func.sum(breaker_outcomes.c.calls), 0)).where(
        breaker_outcomes.c.name == breaker, breaker_outcomes.c.ok.is_(True)
    )
    with svc.store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


CALLS: dict[tuple[str, str], int] = {}


async def _counted(sc: StepContext, name: str) -> str:
    CALLS[(sc.job_id, name)] = CALLS.get((sc.job_id, name), 0) + 1
    return name


class NoInput(BaseModel):
    pass


class TwoPhase(Adapter[NoInput]):
    """A step, a transition, a step: the first step's breaker outcome rides in the second
    step's transaction with the transition."""

    name: ClassVar[str] = "two-phase"
    input_model = NoInput
    machine = linear_machine("two-phase", ["FIRST", "SECOND"])

    async def run(self, job: Job[NoInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("FIRST")
        first = await job.step("a", _counted, "a")
        await job.transition("SECOND")
        return {"first": first, "second": await job.step("b", _counted, "b")}


@pytest.mark.parametrize(
    ("prefix", "occurrence", "where"),
    [
        ("INSERT INTO breaker_outcomes", 1, "step a's outcome, in step b's transaction"),
        ("INSERT INTO job_events", 4, "the job's last write, after step b"),
    ],
)
async def test_a_database_error_after_a_step_returned_does_not_run_it_again(
    service_for: ServiceFor, prefix: str, occurrence: int, where: str
) -> None:
    """Each step function runs once, the job succeeds, and no bookkeeping is lost."""
    svc = service_for(registry(TwoPhase))
    tenant = svc.store.tenants.ensure("acme")
    fault = FailOnce(svc.store.engine, prefix, occurrence)
    try:
        job = await svc.submit(tenant_id=tenant.id, adapter="two-phase", input={})
        done = await _settled(svc, job.id)
    finally:
        fault.remove()
    assert fault.fired == 1, f"the fault ({where}) never fired"
    assert (done.state, done.output) == ("SUCCEEDED", {"first": "a", "second": "b"})
    assert (CALLS[(job.id, "a")], CALLS[(job.id, "b")]) == (1, 1)
    states = [e.to_state for e in await svc.events(job.id)]
    assert states == ["INIT", "QUEUED", "FIRST", "SECOND", "SUCCEEDED"]
    assert svc.replay(job.id).matches
    assert _ok_outcomes(svc, "portal:two-phase") == 2  # each success reached the breaker once


async def test_a_database_error_writing_a_failures_evidence_does_not_call_the_portal_again(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """A page change's HTML evidence fails to save once: the evidence is retried on its own,
    the portal was called once, and the job parks with the evidence attached."""
    world.context("echo").options["markup_class"] = "changed"
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    fault = FailOnce(svc.store.engine, "INSERT INTO evidence")
    try:
        job = await svc.submit(
            tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "dom"}
        )

        async def parked() -> Any:
            return (await svc.get(job.id)).state == "OPERATOR_ACTION_REQUIRED"

        await wait_until(parked, timeout=30)
    finally:
        fault.remove()
    assert fault.fired == 1
    assert world.ledger("echo").count("hit", "dom") == 1
    [evidence] = svc.store.jobs.evidence(job.id)
    assert evidence.kind == "html"
    [esc] = await svc.escalations(job_id=job.id)
    assert esc.kind == "page_changed"
    assert esc.details["evidence"] == [evidence.id]
    await svc.cancel(job.id, actor="op:test", reason="done looking")


_SUBMITTING: contextvars.ContextVar[bool] = contextvars.ContextVar("submitting", default=False)


class JobStatements:
    """SQL statements on every engine that belong to one job: its submit (marked by a
    context variable) and everything run in its DBOS workflow (DBOS's own checkpoints
    included); the queue's polling and the janitor, shared by all jobs, are not counted."""

    def __init__(self) -> None:
        self.job_id = ""
        self.statements: list[str] = []
        self.full: list[str] = []  # the same statements, whole
        event.listen(sa.engine.Engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if _SUBMITTING.get() or (self.job_id and DBOS.workflow_id == self.job_id):
            self.statements.append(" ".join(statement.split()[:3]))
            self.full.append(statement)

    def remove(self) -> None:
        event.remove(sa.engine.Engine, "before_cursor_execute", self._before)


async def test_a_three_step_noop_job_takes_one_checkpoint_per_step_and_few_statements(
    service_for: ServiceFor,
) -> None:
    """Its workflow records one DBOS step per adapter step (no gate, load or transition
    steps), and its submit and workflow together run at most 40 statements (30 on SQLite
    and 24 on PostgreSQL when written, where each of its three writes is one statement: 31
    before that; 104 before issue 14, counted the benchmark's way)."""
    svc = service_for(registry(NoopAdapter))
    tenant = svc.store.tenants.ensure("acme")
    counter = JobStatements()
    counter.job_id = "job_noop_count"
    try:
        token = _SUBMITTING.set(True)
        try:
            job = await svc.submit(
                tenant_id=tenant.id, adapter="noop", input={"steps": 3}, job_id=counter.job_id
            )
        finally:
            _SUBMITTING.reset(token)
        done = await _settled(svc, job.id)
    finally:
        counter.remove()
    assert (done.state, done.output) == ("SUCCEEDED", {"total": 3})
    steps = await DBOS.list_workflow_steps_async(job.id)
    assert [s["function_name"] for s in steps] == ["step:noop"] * 3
    states = [e.to_state for e in await svc.events(job.id)]
    assert states == ["INIT", "QUEUED", "WORKING", "SUCCEEDED"]
    assert len(counter.statements) <= STATEMENT_BUDGET, counter.statements
    if svc.store.engine.dialect.name == "postgresql":
        # each write (the submit, the first step's transitions, the end) is one statement:
        # the job row, its events and outbox rows and the NOTIFY in one WITH … statement
        apart = ("UPDATE jobs", "INSERT INTO jobs", "INSERT INTO job_events", "INSERT INTO outbox")
        assert not [s for s in counter.statements if s.startswith(apart) or "pg_notify" in s]
        writes = [s for s in counter.full if s.startswith("WITH") and " jobs " in s]
        assert len(writes) == 3, writes
