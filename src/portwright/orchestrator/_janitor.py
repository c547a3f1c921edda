"""Background upkeep of a worker process: heartbeats, dead-worker takeover, orphan jobs.

Open-source DBOS recovers a process's workflows only when that same process
(executor id) restarts. A worker that dies for good would strand its jobs, so
every worker heartbeats into the `workers` table, and any live worker that
sees another fall silent claims it with a conditional UPDATE (exactly one
claimant wins) and asks DBOS to re-enqueue the dead executor's pending
workflows (DBOS's re-enqueue admits exactly one runner).

The janitor outlives a database outage: a failed round is logged (one line when the
database becomes unreachable, one when it is back) and retried with backoff. After an
outage every worker's heartbeat is stale, so a janitor takes over nobody until it has been
back for `dead_worker_after_s`: time for the others, alive too, to heartbeat again.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog
from dbos import DBOS

from portwright.orchestrator._chunks import CHUNK_NOTE, balance_chunk_queues, live_workers
from portwright.orchestrator._queue_wake import set_peers
from portwright.resilience import PollingThread, PollingWorker
from portwright.store import OutageBackoff

if TYPE_CHECKING:
    from portwright.orchestrator._runtime import Runtime

__all__ = ["Janitor"]

log = structlog.get_logger("portwright.janitor")

ORPHAN_AGE_S = 5.0
ORPHAN_EVERY_S = 5.0
ORPHAN_PAGE = 500
LIVE = frozenset({"PENDING", "ENQUEUED"})  # a chunk workflow in these still has its items
DECISION_REDELIVER_AFTER_S = 10.0  # a decision recorded this long ago, job still waiting


class Janitor:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        interval = runtime.settings.heartbeat_interval_s
        worker = PollingWorker(
            "janitor",
            poll_s=interval,
            pacer=lambda loop: OutageBackoff(log, loop, first_s=interval, cap_s=max(interval, 5)),
            rounds=[self._round],
        )
        self._thread = PollingThread(worker, name="portwright-janitor")
        self._last_orphan_scan = 0.0
        self._orphan_cursor: str | None = None
        self._takeover_after = 0.0  # monotonic: no takeovers before (set after an outage)
        self._draining = False

    def start(self) -> None:
        self._rt.store.workers.heartbeat(self._rt.executor_id)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the heartbeat thread runs (a worker without it would be taken for dead)."""
        return self._thread.alive

    def stop(self) -> None:
        self._thread.stop()

    def drain(self) -> None:
        """Heartbeat only from now on: a draining worker takes over nobody and starts no
        job, but stays visibly alive so nobody takes over the jobs it is finishing."""
        self._draining = True

    async def _round(self) -> bool:
        """One tick, in a thread of its own (DBOS's recovery is sync code). A failure is
        paced by the worker; after it, takeovers wait for the others to beat again."""
        try:
            await asyncio.to_thread(self.tick)
        except Exception:
            self._takeover_after = time.monotonic() + self._rt.settings.dead_worker_after_s
            raise
        return False

    def tick(self) -> None:
        """One round: heartbeat, take over dead workers, re-enqueue orphaned jobs."""
        rt = self._rt
        rt.store.workers.heartbeat(rt.executor_id)
        if self._draining:
            return
        workers = live_workers(rt)  # this one among them (a janitor runs with workers)
        set_peers(workers > 1)  # anyone to tell of this process's enqueues (`_queue_wake`)
        balance_chunk_queues(rt, workers)  # a worker joined or died: slots shared anew
        if time.monotonic() >= self._takeover_after:
            self.take_over_dead_workers()
        if time.monotonic() - self._last_orphan_scan > ORPHAN_EVERY_S:
            self._last_orphan_scan = time.monotonic()
            self.enqueue_orphans()
            self.redeliver_decisions()
            rt.rollouts.watch()  # canaries breaking more than live are rolled back
        # (each portal's synthetic probe is a DBOS schedule of its own: orchestrator._probes)

    def redeliver_decisions(self) -> int:
        """Operators' decisions recorded but not delivered (a crash between the record and
        the message) reach their waiting jobs; an already delivered one is not sent twice."""
        from portwright.orchestrator._decisions import redeliver

        stale = self._rt.store.escalations.undelivered_decisions(
            decided_before=time.time() - DECISION_REDELIVER_AFTER_S
        )
        for esc in stale:
            redeliver(esc)
        if stale:
            log.warning("redelivered operators' decisions", escalations=[e.id for e in stale])
        return len(stale)

    def take_over_dead_workers(self) -> list[str]:
        from dbos._dbos import _get_dbos_instance
        from dbos._recovery import recover_pending_workflows

        rt = self._rt
        cutoff = time.time() - rt.settings.dead_worker_after_s
        taken = []
        for worker in rt.store.workers.silent_since(cutoff, exclude=rt.executor_id):
            if not rt.store.workers.claim_dead(worker.id, by=rt.executor_id, cutoff=cutoff):
                continue  # another live worker claimed it first
            handles = recover_pending_workflows(_get_dbos_instance(), [worker.id])
            rt.store.workers.set_recovered(worker.id, len(handles))
            log.warning(
                "took over a dead worker's jobs",
                dead_worker=worker.id,
                jobs=[h.get_workflow_id() for h in handles],
            )
            taken.append(worker.id)
        return taken

    def enqueue_orphans(self) -> int:
        """Jobs accepted but never enqueued (a crash between insert and enqueue) get enqueued.
        Each round checks one page of old queued jobs (a cursor walks them all), asks DBOS
        which have workflows in one query and enqueues the rest in one transaction."""
        rt = self._rt
        page = rt.store.jobs.queued_page(
            created_before=time.time() - ORPHAN_AGE_S,
            after_id=self._orphan_cursor,
            limit=ORPHAN_PAGE,
        )
        self._orphan_cursor = page[-1].id if len(page) == ORPHAN_PAGE else None
        if not page:
            return 0
        # a batch item runs in its chunk's workflow while that one is live
        chunk_of = {job.id: str((job.notes or {}).get(CHUNK_NOTE, "")) for job in page}
        wanted = [job.id for job in page] + sorted({c for c in chunk_of.values() if c})
        known = {
            status.workflow_id
            for status in DBOS.list_workflows(
                workflow_ids=wanted, load_input=False, load_output=False
            )
            if status.workflow_id in chunk_of or status.status in LIVE
        }
        orphans = [
            job
            for job in page
            if job.id not in known and chunk_of[job.id] not in known and rt.has_queue(job.portal)
        ]
        count = rt.enqueue_many(orphans)
        if count:
            log.warning("enqueued orphaned jobs", count=count)
        return count
