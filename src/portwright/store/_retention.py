"""Retention: the queries that find and delete what is due, a bounded batch at a time.

Each `purge_*` deletes at most `limit` rows that ended before `cutoff` and returns what
went (`Purged`: rows, bytes, and the blob keys the caller must delete from the blob
store). Nothing a running job holds is touched: evidence and usage of a job that has not
finished, a job with an unfinished child or parent, an undelivered delivery, an outbox event not
yet published or with a delivery still owed, an inbound webhook not yet processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from portwright.store._schema import (
    batches,
    deliveries,
    delivery_attempts,
    escalations,
    evidence,
    job_events,
    jobs,
    outbox,
    outbox_pending,
    usage_records,
    webhook_inbox,
)

__all__ = ["EVIDENCE_KINDS", "Purged", "RetentionRepository"]

# the result kinds kept in the blob store, by the evidence kind that holds them
EVIDENCE_KINDS = {"html": ("html",), "screenshots": ("screenshot",), "extracted": ("extracted",)}


@dataclass
class Purged:
    rows: int = 0
    bytes: int = 0
    blob_keys: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


def _finished_job() -> sa.ColumnElement[bool]:
    return sa.exists().where(jobs.c.id == evidence.c.job_id, jobs.c.finished_at.is_not(None))


class RetentionRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def due_evidence(self, kinds: tuple[str, ...], cutoff: float, limit: int) -> Purged:
        """Evidence of `kinds` made before `cutoff` by a finished job (not deleted yet:
        the caller deletes the blobs, then `delete_evidence`)."""
        c = evidence.c
        query = (
            sa.select(c.id, c.blob_key, c.size)
            .where(c.kind.in_(kinds), c.created_at < cutoff, _finished_job())
            .order_by(c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return Purged(
            rows=len(rows),
            bytes=sum(int(r.size) for r in rows),
            blob_keys=[str(r.blob_key) for r in rows],
            ids=[str(r.id) for r in rows],
        )

    def delete_evidence(self, ids: list[str]) -> int:
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(evidence.delete().where(evidence.c.id.in_(ids))).rowcount or 0

    def due_jobs(self, cutoff: float, limit: int) -> tuple[list[str], Purged]:
        """Finished jobs that ended before `cutoff` with no unfinished child or parent, and their
        evidence (whose blobs the caller deletes before `delete_jobs`)."""
        child, parent = jobs.alias("child"), jobs.alias("parent")
        running_child = sa.exists().where(
            child.c.parent_id == jobs.c.id, child.c.finished_at.is_(None)
        )
        running_parent = sa.exists().where(  # it still counts its children's outcomes
            parent.c.id == jobs.c.parent_id, parent.c.finished_at.is_(None)
        )
        query = (
            sa.select(jobs.c.id)
            .where(
                jobs.c.finished_at.is_not(None),
                jobs.c.finished_at < cutoff,
                ~running_child,
                ~running_parent,
            )
            .order_by(jobs.c.finished_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            ids = [str(r[0]) for r in conn.execute(query)]
            found = Purged()
            if ids:
                rows = conn.execute(
                    sa.select(evidence.c.blob_key, evidence.c.size).where(
                        evidence.c.job_id.in_(ids)
                    )
                ).all()
                found.bytes = sum(int(r.size) for r in rows)
                found.blob_keys = [str(r.blob_key) for r in rows]
        return ids, found

    def delete_jobs(self, ids: list[str]) -> int:
        """Delete the jobs and everything of theirs (events, evidence rows, escalations)."""
        if not ids:
            return 0
        with self.engine.begin() as conn:
            for table in (evidence, job_events, escalations):
                conn.execute(table.delete().where(table.c.job_id.in_(ids)))
            done = jobs.c.finished_at.is_not(None)  # still finished (never a revived job)
            return conn.execute(jobs.delete().where(jobs.c.id.in_(ids), done)).rowcount or 0

    def purge_usage(self, cutoff: float, limit: int) -> Purged:
        c = usage_records.c
        running = sa.exists().where(jobs.c.id == c.job_id, jobs.c.finished_at.is_(None))
        query = sa.select(c.id).where(c.created_at < cutoff, ~running).order_by(c.id).limit(limit)
        return self._delete_ids(usage_records, query)

    def purge_deliveries(self, cutoff: float, limit: int) -> Purged:
        c = deliveries.c
        query = (
            sa.select(c.id)
            .where(c.status.in_(("delivered", "dead")), c.finished_at < cutoff)
            .order_by(c.finished_at)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(query)]
            if not ids:
                return Purged()
            conn.execute(delivery_attempts.delete().where(delivery_attempts.c.delivery_id.in_(ids)))
            done = c.status.in_(("delivered", "dead"))
            rows = conn.execute(deliveries.delete().where(c.id.in_(ids), done)).rowcount or 0
        return Purged(rows=rows)

    def purge_outbox(self, cutoff: float, limit: int) -> Purged:
        c = outbox.c
        owed = sa.exists().where(
            deliveries.c.outbox_id == c.id, deliveries.c.status.in_(("pending", "delivering"))
        )
        # published (no longer in the relay's queue, which keeps no time: the event's own
        # creation stands in for its publication, seconds later unless the relay was down,
        # and an event still pending is kept however old)
        pending = sa.exists().where(outbox_pending.c.id == c.id)
        query = (
            sa.select(c.id)
            .where(c.created_at < cutoff, ~pending, ~owed)
            .order_by(c.id)
            .limit(limit)
        )
        return self._delete_ids(outbox, query)

    def purge_inbox(self, cutoff: float, limit: int) -> Purged:
        c = webhook_inbox.c
        query = (
            sa.select(c.id, sa.func.length(c.payload))
            .where(
                c.processed_at.is_not(None),
                c.processed_at < cutoff,
                c.status.not_in(("pending", "processing")),
            )
            .order_by(c.processed_at)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return Purged()
            ids = [r[0] for r in rows]
            deleted = conn.execute(webhook_inbox.delete().where(c.id.in_(ids))).rowcount or 0
        return Purged(rows=deleted, bytes=sum(int(r[1] or 0) for r in rows))

    def purge_batches(self, cutoff: float, limit: int) -> Purged:
        c = batches.c
        query = (
            sa.select(c.id)
            .where(c.finished_at.is_not(None), c.finished_at < cutoff)
            .order_by(c.finished_at)
            .limit(limit)
        )
        return self._delete_ids(batches, query)

    def _delete_ids(self, table: sa.Table, query: sa.Select[tuple[object]]) -> Purged:
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(query)]
            if not ids:
                return Purged()
            rows = conn.execute(table.delete().where(table.c.id.in_(ids))).rowcount or 0
        return Purged(rows=rows)
