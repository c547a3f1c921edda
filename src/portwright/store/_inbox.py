"""The webhook inbox: verified events persisted once, then claimed and processed.

A row is written in the same transaction that dedupes it, with status
"pending": the row is its own outbox entry. Processors claim rows with a lease
(a conditional UPDATE, so several gateway processes never take the same row),
then mark them done, retry later, or give up ("failed" for permanent errors,
"dead" after too many attempts).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from portwright._ids import new_id
from portwright.store._rows import to_record, to_records
from portwright.store._schema import webhook_inbox

__all__ = ["FinishedNote", "InboxRecord", "InboxRepository", "NewInboxEvent"]


class FinishedNote(str):
    """A handler's note for an inbox row it has already marked done, note included, in the
    transaction that applied the event: the processor does not write the row again."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class NewInboxEvent:
    """A verified event about to be persisted (what `add_many` takes)."""

    source: str
    external_id: str
    event_id: str
    checksum: str
    payload: bytes
    event_type: str
    tenant_id: str | None


@dataclass(frozen=True, slots=True)
class InboxRecord:
    id: str
    source: str
    external_id: str
    event_id: str
    checksum: str
    tenant_id: str | None
    event_type: str
    payload: bytes
    status: str
    attempts: int
    next_attempt_at: float
    lease_until: float | None
    leased_by: str | None
    result: str | None
    received_at: float
    processed_at: float | None


class InboxRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(
        self,
        *,
        source: str,
        external_id: str,
        event_id: str,
        checksum: str,
        payload: bytes,
        event_type: str,
        tenant_id: str | None,
    ) -> tuple[InboxRecord, bool]:
        """Persist an event once; returns (row, created). A duplicate returns the first row."""
        event = NewInboxEvent(
            source, external_id, event_id, checksum, payload, event_type, tenant_id
        )
        return self.add_many([event])[0]

    def add_many(self, events: Sequence[NewInboxEvent]) -> list[tuple[InboxRecord, bool]]:
        """`add` for many events in one transaction (group commit): one (row, created) per
        event, in order. A duplicate, of an earlier row or of one earlier in `events`,
        returns the first row and created=False."""
        now = time.time()
        rows: list[dict[str, Any]] = [
            {
                "id": new_id("whk"),
                "source": event.source,
                "external_id": event.external_id,
                "event_id": event.event_id,
                "checksum": event.checksum,
                "tenant_id": event.tenant_id,
                "event_type": event.event_type,
                "payload": event.payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "leased_by": None,
                "result": None,
                "received_at": now,
                "processed_at": None,
            }
            for event in events
        ]
        out: list[tuple[InboxRecord, bool]] = []
        if not rows:
            return out
        with self.engine.begin() as conn:
            # One statement for the batch; of two copies in it, the first is written.
            written = {row[0] for row in conn.execute(_insert_ignoring_duplicates(conn), rows)}
            for values in rows:
                if values["id"] in written:
                    out.append((InboxRecord(**values), True))
                    continue
                key = (
                    (webhook_inbox.c.source == values["source"])
                    & (webhook_inbox.c.external_id == values["external_id"])
                    & (webhook_inbox.c.event_id == values["event_id"])
                )
                row = conn.execute(sa.select(webhook_inbox).where(key)).one()
                out.append((to_record(InboxRecord, row), False))
        return out

    def get(self, inbox_id: str) -> InboxRecord:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(webhook_inbox).where(webhook_inbox.c.id == inbox_id)
            ).first()
        if row is None:
            raise LookupError(f"no webhook event {inbox_id}")
        return to_record(InboxRecord, row)

    def search(
        self, *, source: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[InboxRecord]:
        query = sa.select(webhook_inbox).order_by(webhook_inbox.c.received_at).limit(limit)
        if source is not None:
            query = query.where(webhook_inbox.c.source == source)
        if status is not None:
            query = query.where(webhook_inbox.c.status == status)
        with self.engine.connect() as conn:
            return to_records(InboxRecord, conn.execute(query))

    def counts(self) -> dict[str, int]:
        query = sa.select(webhook_inbox.c.status, sa.func.count()).group_by(webhook_inbox.c.status)
        with self.engine.connect() as conn:
            return {row[0]: int(row[1]) for row in conn.execute(query)}

    def claim(self, *, worker: str, limit: int, lease_s: float) -> list[InboxRecord]:
        """Lease up to `limit` due rows (pending, or processing with an expired lease)."""
        now = time.time()
        due = sa.or_(
            (webhook_inbox.c.status == "pending") & (webhook_inbox.c.next_attempt_at <= now),
            (webhook_inbox.c.status == "processing") & (webhook_inbox.c.lease_until < now),
        )
        with self.engine.connect() as conn:
            candidates = conn.execute(
                sa.select(webhook_inbox.c.id)
                .where(due)
                .order_by(webhook_inbox.c.next_attempt_at)
                .limit(limit)
            ).all()
        if not candidates:
            return []
        ids = [row[0] for row in candidates]
        lease_until = now + lease_s
        with self.engine.begin() as conn:
            # One conditional UPDATE: a row another processor took meanwhile no longer matches.
            conn.execute(
                webhook_inbox.update()
                .where(webhook_inbox.c.id.in_(ids), due)
                .values(
                    status="processing",
                    lease_until=lease_until,
                    leased_by=worker,
                    attempts=webhook_inbox.c.attempts + 1,
                )
            )
            rows = conn.execute(
                sa.select(webhook_inbox).where(
                    webhook_inbox.c.id.in_(ids),
                    webhook_inbox.c.leased_by == worker,
                    webhook_inbox.c.lease_until == lease_until,
                )
            ).all()
        return to_records(InboxRecord, rows)

    def finish(self, inbox_id: str, *, status: str, result: str) -> None:
        """End processing: "done", "failed" (permanent) or "dead" (out of attempts)."""
        with self.engine.begin() as conn:
            conn.execute(
                webhook_inbox.update()
                .where(webhook_inbox.c.id == inbox_id)
                .values(status=status, result=result, processed_at=time.time(), lease_until=None)
            )

    def finish_many(
        self, inbox_ids: list[str], *, status: str, result: str | Mapping[str, str]
    ) -> None:
        """`finish` for many rows in one transaction; `result` is one note for all, or a
        note per id."""
        if not inbox_ids:
            return
        notes = result if isinstance(result, Mapping) else dict.fromkeys(inbox_ids, result)
        t = webhook_inbox.c
        statement = (
            webhook_inbox.update()
            .where(t.id == sa.bindparam("inbox_id"))
            .values(
                status=status,
                result=sa.bindparam("note"),
                processed_at=time.time(),
                lease_until=None,
            )
        )
        with self.engine.begin() as conn:
            conn.execute(statement, [{"inbox_id": i, "note": notes[i]} for i in inbox_ids])

    def retry_at(self, inbox_id: str, *, at: float, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                webhook_inbox.update()
                .where(webhook_inbox.c.id == inbox_id)
                .values(status="pending", next_attempt_at=at, result=error, lease_until=None)
            )


def _insert_ignoring_duplicates(conn: sa.Connection) -> Any:
    """An INSERT that skips a row whose (source, external id, event id) is taken instead of
    raising IntegrityError, so one duplicate does not abort the batch. It returns the ids of
    the rows it wrote (rowcount is not reliable for this across drivers). Executed with a
    list of rows: SQLAlchemy sends them as multi-row VALUES pages ("insertmanyvalues") from
    one cached compilation, instead of compiling a statement per batch size."""
    if conn.dialect.name == "postgresql":
        return (
            postgresql.insert(webhook_inbox).on_conflict_do_nothing().returning(webhook_inbox.c.id)
        )
    if conn.dialect.name == "sqlite":
        return sqlite.insert(webhook_inbox).on_conflict_do_nothing().returning(webhook_inbox.c.id)
    raise NotImplementedError(f"webhook inbox on {conn.dialect.name}: SQLite or PostgreSQL")
