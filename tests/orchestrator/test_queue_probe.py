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
from tests.conftest import SKIP_PG, RuntimeFactory, pg_database
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


def _status_table(db_url: str) -> tuple[Any, Any]:
    """(an engine of one connection on `db_url`, a `workflow_status` table made there with
    the two columns the probe reads)."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    if engine.dialect.name == "postgresql":
        engine.dispose()
        engine = sa.create_engine(
            db_url.replace("postgresql://", "postgresql+psycopg://", 1),
            pool_size=1,
            max_overflow=0,
        )
    meta = sa.MetaData()
    table = sa.Table(
        "workflow_status", meta, sa.Column("queue_name", sa.Text), sa.Column("status", sa.Text)
    )
    meta.create_all(engine)
    return engine, table


def test_a_busy_queue_polls_without_a_read_each_time_and_idle_polls_keep_reading(
    db_url: str,
) -> None:
    """A queue with work at the last read polls as DBOS's own without another read (a
    batch's chunk queue polls every 50 ms; re-reading every queue at that pace cost ~4 %
    of a batch's CPU); an idle queue's poll past the freshness reads again, and sees the
    busy queue emptied. A queue with PENDING workflows only (running) has no work."""
    from portwright.orchestrator._queue_probe import QueueProbe

    engine, table = _status_table(db_url)
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {"queue_name": "chunks", "status": "ENQUEUED"},
                {"queue_name": "chunks", "status": "ENQUEUED"},
                {"queue_name": "portal-b", "status": "PENDING"},
                {"queue_name": "portal-b", "status": "SUCCESS"},
            ],
        )
    probe = QueueProbe(engine, table, ttl_s=0.0)  # every poll may read
    assert not probe.has_work("portal-b")
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
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database only (what the test checks has no SQLite side)."""
    if SKIP_PG:
        pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
    yield from pg_database("pw_probe")


@pytest.mark.postgres
def test_the_probe_read_stays_prepared_on_postgres(pg_url: str) -> None:
    """On PostgreSQL the probe's read is one statement whatever the queues, and its read
    leaves it prepared on the connection (it ends with a COMMIT: psycopg deallocates what
    it prepared at a ROLLBACK), so the server does not plan it again on every read (the
    union it replaced cost 1-3 ms of planning a read); its answers follow the table."""
    db_url = pg_url
    from portwright.orchestrator._queue_probe import QueueProbe

    engine, table = _status_table(db_url)
    names = [f"portal-{i}" for i in range(10)]
    probe = QueueProbe(engine, table, ttl_s=0.0)
    assert not any(probe.has_work(name) for name in names)
    for _ in range(8):  # psycopg prepares a statement at its fifth use on a connection
        probe._read()
    with engine.connect() as conn:  # the pool's one connection: the probe's
        prepared = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").all()
        conn.commit()
    assert any("unnest" in row[0] for row in prepared), prepared
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"queue_name": "portal-7", "status": "ENQUEUED"}])
    assert probe.has_work("portal-3") is False  # an idle queue's poll reads again
    assert probe.has_work("portal-7")
    assert [name for name in names if probe.has_work(name)] == ["portal-7"]
    engine.dispose()


# -- the queue rows the polls hold (`QueueRows`) ------------------------------------------


def _poll_counters(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, int], dict[str, int]]:
    """(polls, loads) per queue from now on: `polls` counts the probe's `has_work` (one per
    poll of a queue), `loads` DBOS's own `get_queue` called on a queue's poll thread."""
    import threading
    from collections import Counter

    from dbos._sys_db import SystemDatabase

    from portwright.orchestrator._queue_probe import QueueProbe

    polls: Counter[str] = Counter()
    loads: Counter[str] = Counter()
    has_work = QueueProbe.has_work
    get_queue = SystemDatabase.get_queue

    def counted_has_work(self: QueueProbe, queue_name: str) -> bool:
        polls[queue_name] += 1
        return has_work(self, queue_name)

    def counted_get_queue(self: SystemDatabase, name: str, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("queue-worker-"):
            loads[name] += 1
        return get_queue(self, name, **kwargs)

    monkeypatch.setattr(QueueProbe, "has_work", counted_has_work)
    monkeypatch.setattr(SystemDatabase, "get_queue", counted_get_queue)
    return polls, loads


def test_an_idle_queues_poll_does_not_reload_its_row_every_time(
    make_runtime: RuntimeFactory,
    settings: Settings,
    world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker's idle queues poll on (every 50 ms here) without DBOS reloading the queue's
    row from the database on each poll: with the reload pace set to an hour, a queue's
    poll thread loads it once (and once more at most, from before the hook was in)."""
    import portwright.orchestrator._queue_probe as queue_probe

    monkeypatch.setattr(queue_probe, "ROW_REFRESH_S", 3600.0, raising=False)
    polls, loads = _poll_counters(monkeypatch)
    runtime: Runtime = make_runtime(_registry(), settings=reaching(settings, world))
    queue = runtime.registered_queue("echo")
    assert queue is not None
    wait_until_sync(lambda: polls[queue.name] >= 12, timeout=60)
    assert polls[queue.name] >= 12
    assert 1 <= loads[queue.name] <= 2, (dict(polls), dict(loads))


def _set_elsewhere(settings: Settings, queue_name: str, setter: str, value: str) -> None:
    """Another process (a DBOS client) calls the queue's `setter` with `value` (an int, a
    float with a point, or 'none')."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dbos import DBOSClient\n"
        "client = DBOSClient(system_database_url=sys.argv[1])\n"
        "queue = client.retrieve_queue(sys.argv[2])\n"
        "raw = sys.argv[4]\n"
        "value = None if raw == 'none' else float(raw) if '.' in raw else int(raw)\n"
        "getattr(queue, sys.argv[3])(value)\n"
        "client.destroy()\n"
    )
    command = [sys.executable, "-c", code, settings.dbos_database_url, queue_name, setter, value]
    subprocess.run(command, check=True, timeout=120)


def _set_worker_concurrency_elsewhere(
    settings: Settings, queue_name: str, value: int | None
) -> None:
    """Another process sets the queue's worker concurrency in its row."""
    _set_elsewhere(settings, queue_name, "set_worker_concurrency", str(value).lower())


def test_a_worker_concurrency_set_by_another_process_holds_the_next_dequeue(
    make_runtime: RuntimeFactory,
    settings: Settings,
    world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The queue's row cached by its idle poll (an hour's reload pace here) is reloaded when
    the poll finds work, before the dequeue: another process sets the echo queue's worker
    concurrency to 0 while it is idle, and a job submitted then is not taken (its polls
    see it waiting) until the other process sets it back. A poll that dequeued with its
    cached row (the reverted attempt) ran the job at once."""
    import portwright.orchestrator._queue_probe as queue_probe

    monkeypatch.setattr(queue_probe, "ROW_REFRESH_S", 3600.0)
    polls, _ = _poll_counters(monkeypatch)
    settings = reaching(settings, world)
    runtime: Runtime = make_runtime(_registry(), settings=settings)
    rows = queue_probe._rows_installed[-1]
    queue = runtime.registered_queue("echo")
    assert queue is not None
    wait_until_sync(lambda: rows.held(queue.name) is not None, timeout=60)  # row cached
    _set_worker_concurrency_elsewhere(settings, queue.name, 0)

    tenant = runtime.store.tenants.ensure("acme", plan="business")
    job = asyncio.run(
        JobService(runtime).submit(
            tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "k"}
        )
    )
    seen = polls[queue.name]
    wait_until_sync(lambda: polls[queue.name] >= seen + 10, timeout=60)  # polled with work
    assert runtime.store.jobs.get(job.id).status == "queued"

    _set_worker_concurrency_elsewhere(settings, queue.name, None)
    wait_until_sync(lambda: runtime.store.jobs.get(job.id).status == "succeeded", timeout=60)
    assert rows.enabled  # DBOS's poll held the rows it was handed: the cache stayed on


def test_an_idle_queues_poll_still_takes_a_changed_polling_interval(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """The row an idle queue's poll reuses is reloaded (at most a second later): a polling
    interval set in the queue's row by another process reaches the row the poll holds."""
    import portwright.orchestrator._queue_probe as queue_probe

    settings = reaching(settings, world)
    runtime: Runtime = make_runtime(_registry(), settings=settings)
    rows = queue_probe._rows_installed[-1]
    queue = runtime.registered_queue("echo")
    assert queue is not None
    wait_until_sync(lambda: rows.held(queue.name) is not None, timeout=60)
    assert rows.held(queue.name)._polling_interval_sec != 0.35
    _set_elsewhere(settings, queue.name, "set_polling_interval_sec", "0.35")
    wait_until_sync(lambda: rows.held(queue.name)._polling_interval_sec == 0.35, timeout=60)


def test_a_deleted_queue_row_stops_its_poll_thread(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """Deleting a queue's row (as another process may) still stops the queue's poll thread
    on a worker whose polls reuse the row while the queue is idle."""
    import threading

    runtime: Runtime = make_runtime(_registry(), settings=reaching(settings, world))
    queue = runtime.registered_queue("echo")
    assert queue is not None
    thread = f"queue-worker-{queue.name}"

    def polling() -> bool:
        return any(t.name == thread for t in threading.enumerate())

    wait_until_sync(polling, timeout=60)
    _sys_db().delete_queue(queue.name)
    wait_until_sync(lambda: not polling(), timeout=60)


def test_the_rows_are_dbos_own_when_its_poll_is_not_the_one_expected(
    make_runtime: RuntimeFactory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail safe to DBOS's own reload on every poll: (1) without DBOS's
    `queue_worker_thread` nothing is hooked; (2) a poll that dequeues with a copy of the
    row it was handed (so a reload into that row would not reach its dequeue) turns the
    cache off at its first poll with work, skipping that poll's dequeue, and every later
    poll gets DBOS's own fresh row."""
    import copy

    import dbos._queue as dbos_queue

    import portwright.orchestrator._queue_probe as queue_probe

    runtime: Runtime = make_runtime(_registry(), settings=settings, run_workers=False)
    queue = runtime.registered_queue("echo")
    assert queue is not None
    sys_db = _sys_db()

    with monkeypatch.context() as patched:
        patched.delattr(dbos_queue, "queue_worker_thread")
        assert queue_probe.install_queue_rows(refresh_s=3600.0) is None
    assert "get_queue" not in vars(sys_db)  # DBOS's own method, not hooked

    def queue_worker_thread(name: str) -> tuple[Any, list[str | None]]:
        """One poll of a DBOS that copies the row it reloaded."""
        queue = copy.copy(sys_db.get_queue(name))
        return queue, sys_db.dequeue_scopes(name)

    monkeypatch.setattr(dbos_queue, "queue_worker_thread", queue_worker_thread)
    rows = queue_probe.install_queue_rows(refresh_s=3600.0)
    assert rows is not None
    try:
        first, scopes = queue_worker_thread(queue.name)
        assert scopes == []  # this poll's dequeue skipped
        assert not rows.enabled
        again, scopes = queue_worker_thread(queue.name)
        assert scopes == [None]  # DBOS's own (no probe here): one unkeyed scope
        assert again is not first  # a fresh row, DBOS's own
        assert rows.held(queue.name) is not again
    finally:
        uninstall_queue_probe()
