"""Idle queues skip their dequeue (`portwright.orchestrator._queue_probe`): a queue's poll
gets no scope while no workflow is ENQUEUED in it, gets one as soon as this process
enqueued there, and one enqueued behind its back is seen within the probe's freshness;
a worker with the probe installed still runs what it is given. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from dbos import DBOS, SetWorkflowID

from portwright.adapters import AdapterRegistry
from portwright.orchestrator import JobService, Runtime
from portwright.orchestrator._queue_probe import (
    _installed,
    install_queue_probe,
    uninstall_queue_probe,
)
from portwright.orchestrator._workflow import job_workflow
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.settings import Settings
from portwright.testing import EchoAdapter, wait_until_sync
from tests.conftest import RuntimeFactory
from tests.support import reaching


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([echo_service("echo")], seed=7) as started:
        yield started


def _registry() -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    return registry


def _sys_db() -> Any:
    from dbos._dbos import _get_dbos_instance

    return _get_dbos_instance()._sys_db


def test_an_idle_queue_gets_no_scope_until_a_workflow_waits_in_it(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """On a runtime without workers (nobody dequeues behind the test's back): the echo
    portal's queue is skipped while empty; a submit through this process makes it polled at
    once (whatever the probe's freshness); an enqueue the probe was not told of is seen
    within its freshness; once nothing waits, it is skipped again."""
    settings = reaching(settings, world)
    runtime: Runtime = make_runtime(_registry(), settings=settings, run_workers=False)
    queue = runtime.registered_queue("echo")
    assert queue is not None
    sys_db = _sys_db()
    unhooked = sys_db.dequeue_scopes("any-queue")
    assert unhooked == [None]  # DBOS's own: one unkeyed scope
    probe = install_queue_probe(ttl_s=3600.0)  # no re-read unless a new queue is asked
    assert probe is not None
    try:
        assert sys_db.dequeue_scopes(queue.name) == []
        assert sys_db.dequeue_scopes("chunks-nobody") == []
        reads = probe.reads

        tenant = runtime.store.tenants.ensure("acme", plan="business")
        job = asyncio.run(
            JobService(runtime).submit(
                tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "k"}
            )
        )
        assert probe.reads == reads  # not read again: the submit marked the queue
        assert sys_db.dequeue_scopes(queue.name) == [None]
        assert sys_db.dequeue_scopes("chunks-nobody") == []

        DBOS.cancel_workflow(job.id)  # nothing ENQUEUED any more
        uninstall_queue_probe()
        probe = install_queue_probe(ttl_s=0.05)  # a fresh probe, re-read every 50 ms
        assert probe is not None
        assert sys_db.dequeue_scopes(queue.name) == []

        # enqueued without telling the probe (as another process would): seen by a re-read
        with SetWorkflowID("behind-its-back"):
            queue.enqueue(job_workflow, "behind-its-back", None)
        assert probe is _installed[-1]
        wait_until_sync(lambda: sys_db.dequeue_scopes(queue.name) == [None], timeout=10)
        DBOS.cancel_workflow("behind-its-back")
        wait_until_sync(lambda: sys_db.dequeue_scopes(queue.name) == [], timeout=10)
    finally:
        uninstall_queue_probe()


def test_a_worker_with_the_probe_runs_jobs_submitted_to_its_idle_queues(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """A worker (the probe installed at launch) whose queues sat idle runs a job submitted
    to them to its end, and another submitted after that one ended."""
    runtime: Runtime = make_runtime(_registry(), settings=reaching(settings, world))
    assert _installed, "a worker's runtime installs the probe"
    service = JobService(runtime)
    tenant = runtime.store.tenants.ensure("acme", plan="business")
    echo = world.url("echo")
    for key in ("a", "b"):
        job = asyncio.run(
            service.submit(tenant_id=tenant.id, adapter="echo", input={"url": echo, "key": key})
        )

        def ended(job_id: str = job.id) -> bool:
            return runtime.store.jobs.get(job_id).status == "succeeded"

        wait_until_sync(ended, timeout=60)


def test_a_failed_probe_read_lets_every_queue_poll_and_is_not_retried_on_each_poll(
    tmp_path: Any,
) -> None:
    """With the system database unreachable, the first read fails (the poll goes on as
    DBOS's own); the polls of every queue after it, within a second, say "has work"
    without another connection attempt — not a failed connect per queue per poll."""
    import sqlalchemy as sa

    from portwright.orchestrator._queue_probe import QueueProbe

    attempts = 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'sys.sqlite'}")

    @sa.event.listens_for(engine, "do_connect")
    def count(*_: Any) -> None:
        nonlocal attempts
        attempts += 1

    table = sa.Table("workflow_status", sa.MetaData(), sa.Column("queue_name"), sa.Column("status"))
    probe = QueueProbe(engine, table, ttl_s=0.001)
    with pytest.raises(sa.exc.OperationalError):
        probe.has_work("portal-a")
    assert attempts == 1
    assert all(probe.has_work(q) for q in ["portal-a", "portal-a", "portal-b", "chunks"] * 25)
    assert attempts == 1


def test_a_busy_queue_polls_without_a_read_each_time_and_idle_polls_keep_reading(
    tmp_path: Any,
) -> None:
    """A queue with work at the last read polls as DBOS's own without another read (a
    batch's chunk queue polls every 50 ms; re-reading every queue at that pace cost ~4 %
    of a batch's CPU); an idle queue's poll past the freshness reads again, and sees the
    busy queue emptied."""
    import sqlalchemy as sa

    from portwright.orchestrator._queue_probe import QueueProbe

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'sys.sqlite'}")
    meta = sa.MetaData()
    table = sa.Table(
        "workflow_status", meta, sa.Column("queue_name", sa.Text), sa.Column("status", sa.Text)
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"queue_name": "chunks", "status": "ENQUEUED"}])
    probe = QueueProbe(engine, table, ttl_s=0.0)  # every poll may read
    assert probe.has_work("chunks")
    assert not probe.has_work("portal-a")
    reads = probe.reads
    assert all(probe.has_work("chunks") for _ in range(50))
    assert probe.reads == reads  # the busy queue's polls read nothing
    with engine.begin() as conn:
        conn.execute(table.delete())
    assert not probe.has_work("portal-a")  # an idle queue's poll reads again
    assert probe.reads == reads + 1
    assert not probe.has_work("chunks")  # and the emptied queue is skipped from then on
