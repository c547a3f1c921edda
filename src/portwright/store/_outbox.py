"""The transactional outbox: domain events written in the state change's own transaction.

`add(conn, …)` runs inside the caller's transaction, so an event exists if and
only if the change that caused it committed. The relay claims unpublished rows
(`claim_unpublished`: one `UPDATE … RETURNING` over a partial index holding only the
unpublished ids), fans them out to endpoint deliveries and commits both in one
transaction; the realtime streams read the table by id (the cursor) and never mark anything.

On PostgreSQL `add` also queues a `NOTIFY` on `OutboxRepository.CHANNEL` in the same
transaction: it is delivered only if (and when) the transaction commits, and several
in one transaction collapse into one. Listeners (`portwright.delivery`'s
`OutboxListener`) use it to wake every process's hub and relay at once instead of
at their next poll. SQLite has no such thing: there the pollers find the row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portwright.store._bulk import insert_plain
from portwright.store._rows import to_record, to_records
from portwright.store._schema import outbox

__all__ = ["OutboxHead", "OutboxRecord", "OutboxRepository"]


_INSERT = outbox.insert()
# conn.info key: the transaction that already notified (kept referenced, so a later
# transaction can never be mistaken for it)
_NOTIFIED = "portwright.outbox.notified"


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    event_id: str
    tenant_id: str | None
    topic: str
    subject: str
    platform: str | None
    payload: dict[str, Any]
    created_at: float
    published_at: float | None
    target: str | None = None  # an endpoint URL of the tenant: only it receives the event


@dataclass(frozen=True, slots=True)
class OutboxHead:
    """An outbox row without its payload: all that fanning it out to endpoints reads."""

    id: int
    event_id: str
    tenant_id: str | None
    topic: str
    platform: str | None
    created_at: float
    target: str | None = None


_HEAD = [outbox.c[name] for name in OutboxHead.__dataclass_fields__]


def _by_id(head: OutboxHead) -> int:
    return head.id


def claim_statement(dialect: str, limit: int) -> sa.Update:
    """`OutboxRepository.claim_unpublished`'s statement on `dialect`."""
    pending = (
        sa.select(outbox.c.id)
        .where(outbox.c.published_at.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    claimed: sa.ColumnElement[bool]
    if dialect == "postgresql":
        # `id = ANY(ARRAY(subquery))`, not `id IN (subquery)`: the latter's generic plan
        # (a prepared statement, LIMIT a parameter) hash-joins a seq scan of the outbox
        pending = pending.with_for_update(skip_locked=True)
        claimed = outbox.c.id == sa.any_(sa.func.array(pending.scalar_subquery()))
    else:
        claimed = outbox.c.id.in_(pending.scalar_subquery())
    return outbox.update().where(claimed).values(published_at=time.time()).returning(*_HEAD)


_CHANNEL = "portwright_outbox"
# built once: every transaction that writes outbox rows on PostgreSQL runs it
_NOTIFY = sa.select(sa.func.pg_notify(_CHANNEL, ""))


class OutboxRepository:
    CHANNEL = _CHANNEL
    """The NOTIFY channel: an outbox row was written, or deliveries were put back to pending."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def notify(cls, conn: sa.Connection) -> None:
        """On PostgreSQL, notify `CHANNEL` when the caller's transaction commits (SQLite: no-op)."""
        if conn.dialect.name == "postgresql":
            conn.execute(_NOTIFY)

    @classmethod
    def add(
        cls,
        conn: sa.Connection,
        *,
        event_id: str,
        topic: str,
        payload: dict[str, Any],
        tenant_id: str | None = None,
        subject: str = "",
        platform: str | None = None,
        target: str | None = None,
    ) -> int:
        """Write one event in the caller's transaction; returns its cursor id. With
        `target` (one of the tenant's endpoint URLs) only the endpoint there receives it."""
        result = conn.execute(
            _INSERT,
            {
                "event_id": event_id,
                "tenant_id": tenant_id,
                "topic": topic,
                "subject": subject,
                "platform": platform,
                "payload": payload,
                "created_at": time.time(),
                "target": target,
            },
        )
        key = result.inserted_primary_key
        assert key is not None
        # Once per transaction is enough (PostgreSQL would fold repeats into one anyway).
        transaction = conn.get_transaction()
        if transaction is None or conn.info.get(_NOTIFIED) is not transaction:
            cls.notify(conn)
            conn.info[_NOTIFIED] = transaction
        return int(key[0])

    @classmethod
    def add_many(cls, conn: sa.Connection, events: list[dict[str, Any]]) -> None:
        """`add` for many events, in order, in one statement (each a dict of `add`'s
        keyword arguments; `subject`, `tenant_id`, `platform` and `target` may be left out),
        sent as one prebuilt statement (`insert_plain`)."""
        if not events:
            return
        now = time.time()
        rows = [
            {
                "tenant_id": None,
                "subject": "",
                "platform": None,
                "target": None,
                **event,
                "created_at": now,
            }
            for event in events
        ]
        insert_plain(conn, outbox, rows)
        transaction = conn.get_transaction()
        if transaction is None or conn.info.get(_NOTIFIED) is not transaction:
            cls.notify(conn)
            conn.info[_NOTIFIED] = transaction

    @staticmethod
    def exists(conn: sa.Connection, event_id: str) -> bool:
        query = sa.select(outbox.c.id).where(outbox.c.event_id == event_id)
        return conn.execute(query).first() is not None

    def append(self, **values: Any) -> int:
        """`add` in a transaction of its own."""
        with self.engine.begin() as conn:
            return self.add(conn, **values)

    def since(
        self,
        cursor: int,
        *,
        tenant_id: str | None = None,
        subject: str | None = None,
        limit: int = 500,
        until: int | None = None,
    ) -> list[OutboxRecord]:
        """Events after `cursor` (and up to `until`), oldest first (what a stream resyncs
        from)."""
        query = sa.select(outbox).where(outbox.c.id > cursor).order_by(outbox.c.id).limit(limit)
        if until is not None:
            query = query.where(outbox.c.id <= until)
        if tenant_id is not None:
            query = query.where(outbox.c.tenant_id == tenant_id)
        if subject is not None:
            query = query.where(outbox.c.subject == subject)
        with self.engine.connect() as conn:
            return to_records(OutboxRecord, conn.execute(query))

    def ids_since(self, cursor: int, *, limit: int = 500) -> list[int]:
        """The ids of the events after `cursor`, oldest first (`since` without reading or
        decoding the rows: for a reader that only moves its cursor)."""
        query = sa.select(outbox.c.id).where(outbox.c.id > cursor).order_by(outbox.c.id)
        with self.engine.connect() as conn:
            return [int(i) for i in conn.execute(query.limit(limit)).scalars()]

    def since_updated(self, at: float, *, tenant_id: str | None = None) -> int:
        """The cursor just before the first event created at or after `at` (`updated_since`)."""
        query = sa.select(sa.func.min(outbox.c.id)).where(outbox.c.created_at >= at)
        if tenant_id is not None:
            query = query.where(outbox.c.tenant_id == tenant_id)
        with self.engine.connect() as conn:
            first = conn.execute(query).scalar()
        return int(first) - 1 if first is not None else self.last_id()

    def last_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(outbox.c.id))).scalar() or 0)

    @staticmethod
    def claim_unpublished(conn: sa.Connection, limit: int) -> list[OutboxHead]:
        """Mark up to `limit` unpublished events published, oldest first, and return them
        (without their payloads), in one statement in the caller's transaction: an
        `UPDATE … RETURNING` over the oldest unpublished ids, skipping rows another relay
        holds (PostgreSQL). They count as published only if the transaction commits, so the
        caller fans them out in the same transaction; several relays never claim one event
        in two transactions that both commit."""
        claim = claim_statement(conn.dialect.name, limit)
        heads = to_records(OutboxHead, conn.execute(claim))
        heads.sort(key=_by_id)  # RETURNING promises no order
        return heads

    def by_ids(self, ids: list[int]) -> dict[int, OutboxRecord]:
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox).where(outbox.c.id.in_(ids)))
            return {row.id: to_record(OutboxRecord, row) for row in rows}

    def peek_unpublished(self, limit: int) -> list[OutboxRecord]:
        """Unpublished events without locking them (what the bus sinks send first)."""
        with self.engine.connect() as conn:
            query = (
                sa.select(outbox)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(limit)
            )
            return to_records(OutboxRecord, conn.execute(query))

    def pending_count(self) -> int:
        """Events not yet published (the partial index on unpublished ids counts them)."""
        query = sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)
