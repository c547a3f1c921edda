"""Queue wake-ups (`portwright.orchestrator._queue_wake`): a chunk enqueued by one process
starts on a worker in another without waiting for that worker's probe read or poll; a
chunk's end lets the next chunk waiting in its queue start at once; the poll threads' wait
ends on a wake-up for their own queue and on DBOS's stop, and when DBOS's queue threads
are not the ones expected nothing is hooked and a wake-up still marks the probe. On SQLite
and PostgreSQL.

The polling intervals here are 600 s (chunk queues poll every 150 s, the probe reads every
300 s): a chunk that starts within the tests' deadlines (60 s) was started by a wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from dbos import DBOS
from pydantic import BaseModel

from portwright.adapters import AdapterRegistry
from portwright.orchestrator import JobService, Runtime
from portwright.orchestrator._chunks import CHUNK_WORKFLOW, chunk_queue_name
from portwright.orchestrator._queue_probe import _installed, mark_enqueued
from portwright.orchestrator._queue_wake import (
    PollWaits,
    _poll_waits,
    _signals,
    announce,
    hook_poll_threads,
    uninstall_queue_wake,
    wake_local,
)
from portwright.sandbox import SandboxWorld
from portwright.sdk import Adapter, Job, linear_machine
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.conftest import RuntimeFactory
from tests.orchestrator.test_chunks import (
    ChunkWorker,
    _accept,
    _registry,
    _settings,
    _urls,
    _wait_ended,
    _world,
)

SLOW_POLLS = 600.0  # the job queues' polling interval: chunk queues poll every 150 s


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with _world() as started:
        yield started


def _slow(settings: Settings) -> Settings:
    return settings.model_copy(update={"queue_polling_interval_s": SLOW_POLLS})


# -- the poll threads' wait ------------------------------------------------------------


def _waiter(waits: PollWaits, queue: str | None, timeout: float, out: list[bool]) -> Any:
    def wait() -> None:
        out.append(waits.event.wait(timeout) if queue is None else waits.wait(queue, timeout))

    thread = threading.Thread(target=wait)
    thread.start()
    return thread


def test_a_poll_wait_ends_on_its_queues_wake_up_and_every_wait_on_stop() -> None:
    """A poll thread's wait returns False (poll now) on its queue's wake-up, also one that
    came while it was not waiting; DBOS's stop (the event's `set`) ends every wait with
    True; a wake-up never ends a wait on the event itself (DBOS's queue manager's)."""
    from portwright.orchestrator._queue_wake import _waits_for

    event = threading.Event()
    waits = _waits_for(event)
    assert waits is not None
    manager: list[bool] = []
    polled: list[bool] = []
    other: list[bool] = []
    manager_thread = _waiter(waits, None, 60.0, manager)
    other_thread = _waiter(waits, "other", 60.0, other)
    thread = _waiter(waits, "chunks-x", 60.0, polled)
    waits.wake("chunks-x")
    thread.join(timeout=30)
    assert polled == [False]  # woken, not stopped: the poll goes on
    assert waits.woken == 1
    waits.wake(["chunks-x"])  # a wake-up while nobody waits is kept for the next wait
    again: list[bool] = []
    _waiter(waits, "chunks-x", 60.0, again).join(timeout=30)
    assert again == [False]
    event.set()  # DBOS's stop ends every wait, woken or not
    manager_thread.join(timeout=30)
    other_thread.join(timeout=30)
    assert manager == [True], "a wake-up ended a wait on the event itself"
    assert other == [True], "another queue's wake-up ended this queue's wait"
    assert waits.wait("chunks-x", 60.0) is True
    uninstall_queue_wake()


def test_a_lost_dequeues_wake_up_ends_the_wait_sooner_than_an_enqueues() -> None:
    """A dequeue that lost the race for a queue's rows wakes its poll at the conflict
    floor after the wait began (the winner commits in milliseconds), an enqueue's wake-up
    at the plain floor (a stream of enqueues never polls back to back). The clock is
    injected and moved by hand: the waits end on what it reads, never on the wall."""
    from portwright.orchestrator._queue_wake import CONFLICT_FLOOR_S, WOKEN_FLOOR_S

    began: set[threading.Thread] = set()  # the threads that read the clock (a wait began)
    now = [100.0]

    def clock() -> float:
        began.add(threading.current_thread())
        return now[0]

    waits = PollWaits(threading.Event(), clock=clock)
    try:
        waits.wake("lost", prompt=True)
        waits.wake("enqueued")
        lost: list[bool] = []
        enqueued: list[bool] = []
        lost_thread = _waiter(waits, "lost", 60.0, lost)
        enqueued_thread = _waiter(waits, "enqueued", 60.0, enqueued)
        wait_until_sync(lambda: len(began) >= 2, timeout=30)  # both waits began at 100.0
        now[0] = 100.0 + (CONFLICT_FLOOR_S + WOKEN_FLOOR_S) / 2
        lost_thread.join(timeout=30)
        assert lost == [False], "the lost dequeue's poll waited past its floor"
        enqueued_thread.join(timeout=0.3)  # it cannot end before the clock reads its floor
        assert enqueued_thread.is_alive()
        assert enqueued == []
        now[0] = 100.0 + WOKEN_FLOOR_S
        enqueued_thread.join(timeout=30)
        assert enqueued == [False]
        assert waits.woken == 2
        waits.wake("lost")  # the floor is the wake-up's, not the queue's: a plain one now
        again: list[bool] = []
        again_thread = _waiter(waits, "lost", 60.0, again)
        wait_until_sync(lambda: again_thread in began, timeout=30)
        now[0] += CONFLICT_FLOOR_S
        again_thread.join(timeout=0.3)
        assert again_thread.is_alive()
        assert again == []
        now[0] += WOKEN_FLOOR_S
        again_thread.join(timeout=30)
        assert again == [False]
    finally:  # a failed assertion leaves no wait behind (the clock stands still)
        waits.event.set()
        waits.stopped()


def test_a_worker_hooks_its_poll_threads_and_not_when_dbos_is_not_as_expected(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld, monkeypatch: Any
) -> None:
    """A worker's poll threads wait through `PollWaits`; with DBOS's `queue_worker_thread`
    not the one expected, `hook_poll_threads` hooks nothing (DBOS's own waits) and an
    enqueue still marks the probe (the queue's next poll dequeues)."""
    from dbos import _queue as dbos_queue

    runtime: Runtime = make_runtime(_registry(_settings(settings, world)))
    assert _signals, "a worker's runtime signals its enqueues"
    wait_until_sync(lambda: _poll_waits, timeout=30)  # its poll threads' first wait
    assert getattr(dbos_queue.queue_worker_thread, "_portwright_wakeable", False)

    def queue_worker_thread(stop_event: Any, dbos: Any) -> None:  # another signature
        return None

    monkeypatch.setattr(dbos_queue, "queue_worker_thread", queue_worker_thread)
    assert hook_poll_threads() is False
    assert dbos_queue.queue_worker_thread is queue_worker_thread  # not wrapped
    monkeypatch.undo()

    probe = _installed[-1]
    queue = chunk_queue_name("scrape")
    assert runtime.registered_queue(queue) is not None
    _poll_waits.clear()  # as if DBOS's internals had differed: wake-ups only mark
    wake_local(queue)  # no wait hooked: a no-op
    probe.has_work(queue)  # asked once (read), then marked
    # no read after the mark: the runtime's poll threads share this probe, and a read of
    # theirs between the mark and the question (nothing is really enqueued) would answer
    # for the queue instead (seen under load)
    monkeypatch.setattr(probe, "_ttl_s", float("inf"))
    mark_enqueued(queue)
    assert probe.has_work(queue)


class _Recorded:
    """A signal that records what it was asked to send (stands in for the NOTIFY)."""

    def __init__(self) -> None:
        self.sent: list[set[str]] = []

    def send(self, queue_names: set[str]) -> None:
        self.sent.append(set(queue_names))

    def stop(self) -> None:
        return None


def test_a_worker_alone_signals_nobody_until_another_worker_beats(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """A worker's janitor round counts the live workers: alone, its enqueues wake only its
    own polls (no NOTIFY or datagram per enqueue); once another worker's heartbeat is
    seen, they are signalled to the others again."""
    runtime: Runtime = make_runtime(_registry(_settings(settings, world)))
    janitor = runtime.janitor
    assert janitor is not None
    recorded = _Recorded()
    installed = list(_signals)
    _signals[:] = [recorded]  # type: ignore[list-item]
    try:
        janitor.tick()
        announce("chunks-alone")
        assert recorded.sent == []
        runtime.store.workers.heartbeat("another-worker")
        janitor.tick()
        announce("chunks-shared")
        assert recorded.sent == [{"chunks-shared"}]
    finally:
        _signals[:] = installed


def test_a_dequeue_that_lost_the_race_for_the_rows_wakes_its_queue(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """PostgreSQL: a dequeue from the chunk queue (a global cap: DBOS locks its rows
    NOWAIT) while another transaction holds the waiting chunk's row fails as DBOS's own
    does, and wakes the queue's poll (it retries at the floor, not a whole interval on).
    SQLite (no row locks): the dequeue claims the workflow as DBOS's own, no wake-up."""
    import sqlalchemy as sa
    from dbos import SetWorkflowID
    from dbos._dbos import _get_dbos_instance
    from dbos._utils import GlobalParams
    from sqlalchemy.exc import DBAPIError

    from portwright.orchestrator._queue_wake import _waits_for, retry_lock_conflicts
    from portwright.orchestrator._workflow import job_workflow

    runtime: Runtime = make_runtime(
        _registry(_settings(settings, world)), settings=_slow(_settings(settings, world)),
        run_workers=False,
    )  # fmt: skip
    queue = runtime.registered_queue(chunk_queue_name("scrape"))
    assert queue is not None
    waits = _waits_for(threading.Event())
    assert waits is not None
    sys_db = _get_dbos_instance()._sys_db
    assert retry_lock_conflicts()
    with SetWorkflowID("held-chunk"):
        queue.enqueue(job_workflow, "held-chunk", None)

    def dequeue() -> list[str]:
        claimed, _ = sys_db.start_queued_workflows(
            queue, GlobalParams.executor_id, GlobalParams.app_version, None, 0, owner_xid="t"
        )
        return list(claimed)

    try:
        if settings.is_sqlite:
            assert dequeue() == ["held-chunk"]
            assert queue.name not in waits._woken
            return
        engine = sa.create_engine(settings.dbos_database_url)
        try:
            with engine.connect() as conn, conn.begin():
                conn.execute(
                    sa.text(
                        "SELECT 1 FROM dbos.workflow_status "
                        "WHERE workflow_uuid = 'held-chunk' FOR UPDATE"
                    )
                )
                with pytest.raises(DBAPIError) as raised:
                    dequeue()
                assert sys_db.is_lock_conflict(raised.value)
            assert queue.name in waits._woken
            assert queue.name in waits._prompt  # at the conflict floor, not the enqueue's
            assert dequeue() == ["held-chunk"]  # the lock gone, the retry claims it
        finally:
            engine.dispose()
    finally:
        DBOS.cancel_workflow("held-chunk")
        uninstall_queue_wake()


def test_sqlites_wake_up_sockets_live_only_in_this_users_own_directory(tmp_path: Path) -> None:
    """A socket directory (its name derives from the database's path) that others may
    enter is refused: the listener does not start (the probe's reads remain) and nothing
    is sent into it. In a private one a datagram reaches the other listener."""
    from portwright.orchestrator._queue_wake import SocketSignal, socket_dir

    database = str(tmp_path / "dbos.sqlite")
    directory = socket_dir(database)
    directory.mkdir(mode=0o700)
    directory.chmod(0o755)
    try:
        with pytest.raises(PermissionError):
            SocketSignal(database).start(lambda _: None)
        directory.chmod(0o700)
        heard: list[set[str]] = []
        got = threading.Event()
        listener, sender = SocketSignal(database), SocketSignal(database)
        listener.start(lambda names: (heard.append(names), got.set()))
        sender.start(None)
        sender.send({"chunks-x"})
        assert got.wait(30)
        assert heard == [{"chunks-x"}]
        listener.stop()
        sender.stop()
    finally:
        for leftover in directory.glob("*"):
            leftover.unlink()
        with contextlib.suppress(FileNotFoundError):
            directory.rmdir()


# -- across processes ----------------------------------------------------------------------


def _ready(log: Path) -> bool:
    return log.exists() and "ready" in log.read_text(errors="replace")


@pytest.mark.timeout(300)
def test_a_chunk_enqueued_by_another_process_starts_without_waiting_for_the_polls(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld, tmp_path: Path
) -> None:
    """A worker process whose chunk queue polls every 150 s runs a batch accepted by this
    process (no workers here) to its end within 60 s: its wake-up started the chunk."""
    settings = _slow(_settings(settings, world))
    runtime: Runtime = make_runtime(_registry(settings), settings=settings, run_workers=False)
    worker = ChunkWorker(settings, "wake-w1", tmp_path / "worker.log")
    worker.env["PORTWRIGHT_QUEUE_POLLING_INTERVAL_S"] = str(SLOW_POLLS)
    try:
        worker.start()
        wait_until_sync(lambda: _ready(worker.log), timeout=120, every=0.1)
        ids = _accept(JobService(runtime), _urls(world, 20, offset=4600))
        statuses = _wait_ended(runtime.store, ids, timeout_s=60)
    finally:
        worker.stop()
    assert set(statuses.values()) == {"succeeded"}, statuses


# -- a chunk's end -------------------------------------------------------------------------

GATE = threading.Event()


class GateInput(BaseModel):
    key: str


class GatedAdapter(Adapter[GateInput]):
    """Batchable, two chunks at once, each item held until `GATE` opens."""

    name: ClassVar[str] = "gated"
    portal: ClassVar[str | None] = "gated"
    input_model = GateInput
    machine = linear_machine("gated", ["HELD"])
    max_concurrency = 2
    batchable = True
    batch_size = 5
    batch_concurrency = 1

    async def run(self, job: Job[GateInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("HELD")
        opened = await asyncio.to_thread(GATE.wait, 120)
        return {"key": job.input.key, "opened": opened}


def _chunk_statuses() -> list[str]:
    found = DBOS.list_workflows(name=CHUNK_WORKFLOW, load_input=False, load_output=False)
    return sorted(status.status for status in found)


@pytest.mark.timeout(300)
def test_a_chunks_end_starts_the_next_chunk_waiting_in_its_queue(
    make_runtime: RuntimeFactory, settings: Settings
) -> None:
    """Three one-chunk batches for a portal of two chunk slots: two chunks run (held), the
    third waits with its enqueue's wake-up spent; once the two end, the third starts and
    ends within 60 s, though its queue polls every 150 s: the chunks' ends woke the poll."""
    GATE.clear()
    registry = AdapterRegistry()
    registry.register(GatedAdapter)
    runtime: Runtime = make_runtime(registry, settings=_slow(settings))
    service = JobService(runtime)
    tenant = runtime.store.tenants.ensure("acme", plan="business")

    async def submit(batch: int) -> list[str]:
        inputs = [{"key": f"{batch}-{index}"} for index in range(2)]
        records = await service.submit_many(tenant_id=tenant.id, adapter="gated", inputs=inputs)
        await asyncio.gather(*service._enqueueing)  # (the chunk: by submit_many itself)
        return [record.id for record in records]

    try:
        ids = [job_id for batch in range(3) for job_id in asyncio.run(submit(batch))]
        seen: list[list[str]] = []

        def two_run_one_waits() -> bool:
            seen.append(_chunk_statuses())
            return seen[-1] == ["ENQUEUED", "PENDING", "PENDING"]

        try:
            wait_until_sync(two_run_one_waits, timeout=60)
        except AssertionError:
            raise AssertionError(f"chunks: {seen[-1]}") from None
    finally:
        GATE.set()
    statuses = _wait_ended(runtime.store, ids, timeout_s=60)
    assert set(statuses.values()) == {"succeeded"}, statuses
    assert _chunk_statuses() == ["SUCCESS"] * 3
