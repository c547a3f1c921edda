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
until a probe read after the mark says it is empty. One enqueued by another process (a
separate gateway, DBOS's own scheduler) is seen by the next probe read, at most `ttl_s`
later, so by one poll later at most.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog

__all__ = ["QueueProbe", "install_queue_probe", "mark_enqueued", "uninstall_queue_probe"]

log = structlog.get_logger("portwright.queues")

# Literal statuses: SQLite's planner uses the partial index
# `idx_workflow_status_in_flight_v2` (queue_name, status, … WHERE status IN ('ENQUEUED',
# 'PENDING')) only when the query's own literal predicate implies the index's.
_ENQUEUED: sa.ColumnClause[str] = sa.literal_column("'ENQUEUED'")
_IN_FLIGHT: tuple[sa.ColumnClause[str], ...] = (_ENQUEUED, sa.literal_column("'PENDING'"))
_FAILED_S = 1.0  # after a failed read, the next one waits this long


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
        with self._engine.connect() as conn:
            rows = conn.execute(self._query).all()
        self._with_work = {self._names[int(row[0])] for row in rows}
        self._read_at = started
        self.reads += 1

    def _build(self) -> sa.Executable:
        """The read's statement for the queues asked about so far: built again only when a
        queue joins, since a statement object keeps its SQLAlchemy cache key (building the
        union and its cache key on every read was most of the read's CPU)."""
        ws = self._table
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
    """After a commit that enqueued on these queues (names; no-op when no probe runs)."""
    if not _installed:
        return
    probe = _installed[-1]
    for name in {queue_names} if isinstance(queue_names, str) else set(queue_names):
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


def uninstall_queue_probe() -> None:
    _installed.clear()
