"""Retention purge and the move of held results: the work of the scheduled durable job.

`Housekeeper.purge_round(now)` deletes, for every data kind, at most `batch_rows` rows that
are due (ended more than the kind's retention before `now`), with their blobs; a caller
repeats rounds until one purges nothing (bounded batches: no long transaction, no lock
held on a whole table). `move_held()` puts results kept in the database while the blob
store was down into it, each once. The orchestrator runs both as a DBOS scheduled
workflow (`portwright.orchestrator`), with a metric and an audit event per run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from portwright.observability import PROCESS
from portwright.settings import RetentionConfig
from portwright.store import EVIDENCE_KINDS, BlobStore, Purged, Store

__all__ = ["KINDS", "Housekeeper", "PurgeReport"]

log = structlog.get_logger("portwright.retention")

KINDS = ("html", "screenshots", "extracted", "jobs", "usage", "deliveries", "outbox", "inbox")
AUDIT_ACTION = "retention.purge"


@dataclass
class PurgeReport:
    """What one run purged: {kind: {"rows": n, "bytes": n}}, and results moved."""

    purged: dict[str, dict[str, int]] = field(default_factory=dict)
    moved: int = 0

    def add(self, round_: dict[str, dict[str, int]]) -> None:
        for kind, counts in round_.items():
            total = self.purged.setdefault(kind, {"rows": 0, "bytes": 0})
            total["rows"] += counts["rows"]
            total["bytes"] += counts["bytes"]

    @property
    def rows(self) -> int:
        return sum(c["rows"] for c in self.purged.values())


class Housekeeper:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        retention: RetentionConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.retention = retention
        self.clock = clock

    def _ttl(self, kind: str) -> float:
        r = self.retention
        return {
            "html": r.html_s,
            "screenshots": r.screenshots_s,
            "extracted": r.extracted_s,
            "jobs": r.job_metadata_s,
            "usage": r.usage_s,
            "deliveries": r.deliveries_s,
            "outbox": r.outbox_s,
            "inbox": r.inbox_s,
        }[kind]

    def _delete_blobs(self, keys: list[str]) -> None:
        for key in keys:
            self.blobs.delete(key)  # an outage raises: the rows stay for the next run

    def purge_kind(self, kind: str, now: float) -> Purged:
        """One bounded batch of `kind` (see the module docstring)."""
        cutoff = now - self._ttl(kind)
        limit = self.retention.batch_rows
        repo = self.store.retention
        if kind in EVIDENCE_KINDS:
            due = repo.due_evidence(EVIDENCE_KINDS[kind], cutoff, limit)
            self._delete_blobs(due.blob_keys)
            due.rows = repo.delete_evidence(due.ids)
            return due
        if kind == "jobs":
            ids, found = repo.due_jobs(cutoff, limit)
            self._delete_blobs(found.blob_keys)
            found.rows = repo.delete_jobs(ids)
            found.rows += repo.purge_batches(cutoff, limit).rows
            return found
        purge = {
            "usage": repo.purge_usage,
            "deliveries": repo.purge_deliveries,
            "outbox": repo.purge_outbox,
            "inbox": repo.purge_inbox,
        }[kind]
        return purge(cutoff, limit)

    def purge_round(self, now: float | None = None) -> dict[str, dict[str, int]]:
        """One bounded batch of every kind; {kind: {rows, bytes}} for the kinds that had
        any. Counts go to the retention metrics."""
        at = self.clock() if now is None else now
        done: dict[str, dict[str, int]] = {}
        for kind in KINDS:
            purged = self.purge_kind(kind, at)
            if purged.rows:
                done[kind] = {"rows": purged.rows, "bytes": purged.bytes}
                PROCESS.purged(kind, purged.rows, purged.bytes)
        return done

    def purge(self, now: float | None = None, *, max_rounds: int = 100) -> PurgeReport:
        """Rounds until one purges nothing (at most `max_rounds`), then the audit event."""
        report = PurgeReport()
        for _ in range(max_rounds):
            done = self.purge_round(now)
            if not done:
                break
            report.add(done)
        self.record(report, now)
        return report

    def record(self, report: PurgeReport, now: float | None = None) -> None:
        """The run's audit event (only when it purged or moved anything) and a log line."""
        if not report.rows and not report.moved:
            return
        at = self.clock() if now is None else now
        self.store.audit.record(
            actor="system:retention",
            action=AUDIT_ACTION,
            target_type="retention",
            target_id=f"run-{int(at)}",
            before=None,
            after={"purged": report.purged, "moved": report.moved},
        )
        log.info("retention purge", purged=report.purged, moved=report.moved)

    def move_held(self, limit: int = 100) -> int:
        """Put results held in the database into the blob store; how many moved. Stops at
        the first failure (the store is still down): the rest wait for the next run."""
        moved = 0
        for held in self.store.held.oldest(limit):
            try:
                self.blobs.put(held.blob_key, held.data, content_type=held.content_type)
            except Exception as exc:  # noqa: BLE001 - still down: try again next run
                log.info("blob store still unavailable: held results wait", error=str(exc))
                break
            if self.store.held.release(held.id):
                moved += 1
                PROCESS.blobs_moved.inc()
        return moved
