"""Idle queues skip their dequeue: one cheap shared probe instead of each queue's own queries.

DBOS polls every queue a worker listens to on its own thread, every
`queue_polling_interval_s`, whether or not anything waits in it. For a partitioned queue
with a global cap (every portal's job queue and its engine tiers' queues) one poll is a
count of the queue's running workflows and a recursive listing of its partitions, besides
the reload of the queue's row; a worker with five adapters polls nine queues, and in a
1,000-URL batch, where only the chunk queue has work, those idle polls were ~14 % of the
process's GIL time (`py-spy record --gil`, benchmarks/README.md).

`QueueProbe` hooks DBOS's `SystemDatabase.dequeue_scopes` (the scopes a queue's poll
dequeues from; one unkeyed scope unless the system database is sharded): a queue with no
ENQUEUED workflow gets no scope, so its poll does nothing more. Which queues have one is
read for every queue at once, in one statement of index probes, at most every `ttl_s`
and shared by the queue threads. Dequeueing only ever claims ENQUEUED workflows, so a
queue skipped while it has none misses nothing; the probe's filter is looser than
DBOS's own (no application or shard filter), so where it is unsure the poll goes on as
before.

A queue that had work at the last read is not the reason for another: its polls go on as
DBOS's own until an idle queue's poll reads again (the busy queue's fast polls no longer
set the pace of the reads).

Freshness: a workflow enqueued by this process (`Runtime.enqueue`, `enqueue_many`,
chunks) marks its queue (`mark`) after its commit, and a marked queue polls as before
until a probe read after the mark says it is empty. One enqueued by another process
through those paths (a separate gateway) is marked here when its wake-up arrives
(`_queue_wake`: LISTEN/NOTIFY on PostgreSQL, a socket on SQLite), which also wakes the
queue's poll; one enqueued otherwise (DBOS's own scheduler), or whose wake-up was lost,
is seen by the next probe read, at most `ttl_s` later, so by one poll later at most.

Rows: DBOS's poll also reloads the queue's row (`SystemDatabase.get_queue`, a transaction
and a SELECT on its queues table) at the top of every poll, so that a change made in the
database (concurrency, worker concurrency, rate limits, polling interval, the row
deleted) applies without a restart: ~60 reloads a second for an idle worker's queues,
most of its CPU. `QueueRows` hooks that reload for DBOS's poll threads only (the caller
is `queue_worker_thread`; the janitor's and `Queue`'s own reads are DBOS's): an idle
queue's poll reuses the row it was handed, reloaded at most every `ROW_REFRESH_S` (one
second), which is how late a changed polling interval or a deleted row (the queue's
worker stops) reaches an idle queue. A poll whose `dequeue_scopes` (above) found work
reloads the row first, into the very object DBOS's loop holds, so every dequeue reads
the row as it is after the probe said work waits: fresher than DBOS's own, read before
the poll's wait. (The reverted attempt reused the row for an idle queue's first dequeue
too: a worker share the janitor had just lowered came a second late, and one worker took
both of a batch's two chunks.)

Both hooks lean on DBOS internals (3.4): `queue_worker_thread` reloads with `get_queue`
and dequeues with the object it got, after `dequeue_scopes`. If they are not as expected
(the function gone, its code not naming both, `Queue` without a `__dict__`) nothing is
hooked; if a poll turns out to hold another object than the row it was handed, the
cache turns itself off at that poll (skipping its dequeue) and every later poll is
DBOS's own again.
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import ARRAY

from portwright.orchestrator._queue_wake import announce

__all__ = [
    "QueueProbe",
    "QueueRows",
    "install_queue_probe",
    "install_queue_rows",
    "mark_enqueued",
    "mark_seen",
    "uninstall_queue_probe",
]

log = structlog.get_logger("portwright.queues")

# Literal statuses: SQLite's planner uses the partial index
# `idx_workflow_status_in_flight_v2` (queue_name, status, … WHERE status IN ('ENQUEUED',
# 'PENDING')) only when the query's own literal predicate implies the index's.
_ENQUEUED: sa.ColumnClause[str] = sa.literal_column("'ENQUEUED'")
_IN_FLIGHT: tuple[sa.ColumnClause[str], ...] = (_ENQUEUED, sa.literal_column("'PENDING'"))
_FAILED_S = 1.0  # after a failed read, the next one waits this long
ROW_REFRESH_S = 1.0  # an idle queue's poll reloads its row at most this often (`QueueRows`)


class QueueProbe:
    """Which queues have ENQUEUED workflows, read for all at once at most every `ttl_s`."""

    def __init__(self, engine: sa.Engine, table: sa.Table, ttl_s: float) -> None:
        self._engine = engine
        self._table = table  # DBOS's workflow_status
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._names: list[str] = []  # every queue asked about so far
        self._query: sa.Executable | None = None  # the read for `_names`, built once
        self._with_work: set[str] = set()
        self._read_at = float("-inf")  # monotonic start of the last read
        self._marked: dict[str, float] = {}  # queue -> when this process last enqueued
        self._failed_until = float("-inf")  # monotonic: no read before, after a failed one
        self.reads = 0

    def mark(self, queue_name: str) -> None:
        """This process enqueued on `queue_name` (committed): poll it until a read says not."""
        self._marked[queue_name] = time.monotonic()

    def has_work(self, queue_name: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._failed_until:  # unsure since a failed read: poll as DBOS's own
                return True
            if queue_name not in self._names:
                self._names.append(queue_name)
                self._query = None
                self._read_at = float("-inf")  # a queue not read yet: read again now
            elif queue_name in self._with_work:
                # It had work at the last read: its poll goes on as DBOS's own without
                # another read. A busy queue polls fastest (every 50 ms in a batch), and
                # re-reading every queue at its pace was ~4 % of a batch's CPU; the idle
                # queues' polls keep the reads coming, and a queue still marked here after
                # it emptied only polls as it would without the probe until the next read.
                return True
            if now - self._read_at >= self._ttl_s:
                try:
                    self._read()
                except Exception:
                    # Every queue polls as DBOS's own until the next read, `_FAILED_S`
                    # on: with the database down, retrying at `ttl_s` was a failed
                    # connection attempt per queue per poll (~40 a second in tests).
                    self._failed_until = time.monotonic() + _FAILED_S
                    raise
            if queue_name in self._with_work:
                return True
            return self._marked.get(queue_name, float("-inf")) >= self._read_at

    def _read(self) -> None:
        started = time.monotonic()
        if self._query is None:
            self._query = self._build()
        params = {"names": list(self._names)} if self._pg else {}
        with self._engine.connect() as conn:
            rows = conn.execute(self._query, params).all()
            # Ended with COMMIT (it wrote nothing: the same as a ROLLBACK), because psycopg
            # drops every statement it prepared on the connection at a ROLLBACK (`close`'s),
            # so PostgreSQL plans it again on every read. Committed, it is prepared at
            # psycopg's fifth use on a connection and runs on the server's cached plan, as
            # long as nothing else rolls that connection back (DBOS's own reads on its pool
            # do: in a worker most reads are still planned, at ~0.2 ms, see `_build`).
            conn.commit()
        self._with_work = {self._names[int(row[0])] for row in rows}
        self._read_at = started
        self.reads += 1

    @property
    def _pg(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def _build(self) -> sa.Executable:
        """The read's statement for the queues asked about so far: built again only when a
        queue joins, since a statement object keeps its SQLAlchemy cache key (building the
        union and its cache key on every read was most of the read's CPU).

        PostgreSQL: one statement whatever the queues, their names an array parameter,
        each probed by a LATERAL subquery with LIMIT 1 (an index probe that stops at the
        first row, as an EXISTS does). The union of one EXISTS per queue took the server
        1-3 ms to plan on every read (ten subqueries over DBOS's workflow_status and its
        sixteen indexes; planned each time, see `_read`) for ~0.1 ms to run. This one
        costs the server ~1.5 ms less a read: ~80 ms (~10 % of its CPU) over a 1,000-URL
        batch with two workers, 8-15 ms a second per idle worker (5-10 reads a second);
        benchmarks/README.md, "PostgreSQL's CPU per batch item". An EXISTS over the
        array instead is planned as a semi-join that reads every ENQUEUED row (23 ms
        with 20,000 waiting)."""
        ws = self._table
        if self._pg:
            queues = (
                sa.func.unnest(sa.bindparam("names", type_=ARRAY(sa.Text)))
                .table_valued("name", with_ordinality="i")
                .render_derived()
                .alias("q")
            )
            rows = ws.alias("ws")
            first = (
                sa.select(sa.literal_column("1").label("one"))
                .where(
                    rows.c.queue_name == queues.c.name,
                    rows.c.status.in_(_IN_FLIGHT),
                    rows.c.status == _ENQUEUED,
                )
                .limit(sa.literal_column("1"))
                .lateral("w")
            )
            return sa.select((queues.c.i - 1).label("q")).select_from(queues.join(first, sa.true()))
        return sa.union_all(
            *(
                sa.select(sa.literal(index).label("q")).where(
                    sa.exists().where(
                        ws.c.queue_name == name,
                        ws.c.status.in_(_IN_FLIGHT),
                        ws.c.status == _ENQUEUED,
                    )
                )
                for index, name in enumerate(self._names)
            )
        )


_installed: list[QueueProbe] = []  # the probe of this process's launched DBOS, if any


def mark_enqueued(queue_names: Any) -> None:
    """After a commit that enqueued on these queues (names): mark them in this process's
    probe, if one runs, and wake their polls here and in the other processes
    (`_queue_wake.announce`)."""
    names = {queue_names} if isinstance(queue_names, str) else set(queue_names)
    mark_seen(names)
    announce(names)


def mark_seen(queue_names: set[str]) -> None:
    """Another process enqueued on these queues (its wake-up): mark them in this process's
    probe (no-op when no probe runs)."""
    if not _installed:
        return
    probe = _installed[-1]
    for name in queue_names:
        probe.mark(name)


def install_queue_probe(ttl_s: float) -> QueueProbe | None:
    """Hook the launched DBOS's `dequeue_scopes` with a probe (this process's workers poll
    through it); None when DBOS's system database is sharded (its scopes are its own)."""
    from dbos._dbos import _get_dbos_instance

    sys_db: Any = _get_dbos_instance()._sys_db
    if getattr(sys_db, "sharded", False):
        return None
    probe = QueueProbe(sys_db.engine, sys_db.tables.workflow_status, ttl_s)
    original: Callable[[str], list[str | None]] = sys_db.dequeue_scopes

    def dequeue_scopes(queue_name: str) -> list[str | None]:
        try:
            if not probe.has_work(queue_name):
                return []
        except Exception as exc:  # noqa: BLE001 - unsure: the poll goes on as DBOS's own
            log.debug("queue probe failed; polling as before", queue=queue_name, error=repr(exc))
        return original(queue_name)

    sys_db.dequeue_scopes = dequeue_scopes
    _installed[:] = [probe]
    return probe


class QueueRows:
    """The queue rows DBOS's poll threads hold: an idle queue's reloaded at most every
    `refresh_s`, a queue about to dequeue reloaded into the row its poll holds.

    `get` answers the poll thread's reload at the top of each poll; `refresh` runs when
    the poll's `dequeue_scopes` found work, before the dequeue reads the row. `load` is
    DBOS's own `get_queue` (its exceptions propagate: DBOS then keeps the row it had).
    """

    def __init__(self, load: Callable[[str], Any], refresh_s: float) -> None:
        self._load = load
        self._refresh_s = refresh_s
        self._rows: dict[str, tuple[Any, float]] = {}  # name -> (row handed out, loaded at)
        self.enabled = True  # False once the hooked internals were not as expected
        self.loads = 0

    def get(self, name: str) -> Any:
        held = self._rows.get(name)
        if held is not None and time.monotonic() - held[1] < self._refresh_s:
            return held[0]
        started = time.monotonic()
        row = self._load(name)
        self.loads += 1
        if row is None:  # deleted: DBOS stops the queue's worker
            self._rows.pop(name, None)
        else:
            self._rows[name] = (row, started)
        return row

    def held(self, name: str) -> Any:
        """The row last handed to `name`'s poll (None if none)."""
        held = self._rows.get(name)
        return None if held is None else held[0]

    def refresh(self, name: str) -> bool:
        """Reload `name`'s row into the object its poll holds; False if the poll must not
        dequeue (the row is gone, or could not be reloaded into the object it holds)."""
        held = self._rows.get(name)
        if held is None:  # the poll holds a row DBOS loaded itself this poll
            return True
        started = time.monotonic()
        row = self._load(name)
        self.loads += 1
        if row is None:
            self._rows.pop(name, None)  # the poll's next reload says so: its worker stops
            return False
        try:
            vars(held[0]).update(vars(row))  # the same fields, built by the same DBOS code
        except TypeError:  # a `Queue` without `__dict__`: DBOS's own reload from now on
            self.enabled = False
            log.warning("queue rows not cached: DBOS's Queue has no __dict__")
            return False  # this poll's dequeue is skipped: its row may be stale
        self._rows[name] = (held[0], started)
        return True


_rows_installed: list[QueueRows] = []


def install_queue_rows(refresh_s: float | None = None) -> QueueRows | None:
    """Hook the launched DBOS's queue poll threads' row reload (`get_queue`, called by
    `queue_worker_thread` at the top of every poll) with `QueueRows`, and its
    `dequeue_scopes` (after the probe's hook, if installed) to reload the row when the
    poll found work. Other callers of `get_queue` (the janitor, `Queue` properties) get
    DBOS's own. None, hooking nothing, when DBOS's internals are not as expected."""
    try:
        from dbos import _queue as dbos_queue
        from dbos._dbos import _get_dbos_instance

        worker = inspect.unwrap(dbos_queue.queue_worker_thread)  # DBOS's (`_queue_wake`)
        worker_code = worker.__code__
        sys_db: Any = _get_dbos_instance()._sys_db
        original_get: Callable[..., Any] = sys_db.get_queue
        original_scopes: Callable[[str], list[str | None]] = sys_db.dequeue_scopes
        slotted = hasattr(dbos_queue.Queue, "__slots__")
    except Exception as exc:  # noqa: BLE001 - DBOS changed: its own reload on every poll
        log.warning("queue rows not cached: DBOS internals changed", error=repr(exc))
        return None
    if slotted or not {"get_queue", "dequeue_scopes"} <= set(worker_code.co_names):
        log.warning("queue rows not cached: DBOS's queue poll is not the one expected")
        return None
    rows = QueueRows(original_get, ROW_REFRESH_S if refresh_s is None else refresh_s)

    def get_queue(name: str, **kwargs: Any) -> Any:
        if kwargs or not rows.enabled or sys._getframe(1).f_code is not worker_code:
            return original_get(name, **kwargs)
        return rows.get(name)

    def dequeue_scopes(queue_name: str) -> list[str | None]:
        scopes = original_scopes(queue_name)
        caller = sys._getframe(1)
        if not scopes or not rows.enabled or caller.f_code is not worker_code:
            return scopes
        held = rows.held(queue_name)
        if held is not None and caller.f_locals.get("queue") is not held:
            # The poll dequeues with another object than the row it was handed: a DBOS
            # that copies it. Back to DBOS's own reload on every poll, and skip this
            # poll's dequeue (its row may be up to `refresh_s` old).
            rows.enabled = False
            log.warning("queue rows not cached: DBOS's poll does not hold the row it loads")
            return []
        try:
            if not rows.refresh(queue_name):
                return []  # deleted (the poll's next reload stops the worker), or unsure
        except Exception as exc:  # noqa: BLE001 - as DBOS on a failed reload: the row it had
            log.debug("queue row reload failed", queue=queue_name, error=repr(exc))
        return scopes

    sys_db.get_queue = get_queue
    sys_db.dequeue_scopes = dequeue_scopes
    _rows_installed[:] = [rows]
    return rows


def uninstall_queue_probe() -> None:
    _installed.clear()
    _rows_installed.clear()
