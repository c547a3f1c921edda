"""The transactional outbox: domain events written in the state change's own transaction.

`add(conn, …)` runs inside the caller's transaction, so an event exists if and
only if the change that caused it committed. With it goes its id in `outbox_pending`, the
relay's queue: an event is unpublished while its id is there. The database writes that id
itself, in the same statement (0019's trigger: on PostgreSQL one per INSERT statement,
over its new rows; on SQLite one per row), so every writer queues its events, a
previous release's during a rolling upgrade included. The relay claims
(`claim_unpublished`: a `DELETE … RETURNING` of the oldest pending ids, the events' heads
read by those ids), fans them out to endpoint deliveries and commits both in one
transaction; the outbox row itself is written once and never updated. The realtime
streams read the table by id (the cursor) and never mark anything.

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
from sqlalchemy.sql.dml import ReturningDelete

from portwright.store._bulk import insert_plain
from portwright.store._rows import to_record, to_records
from portwright.store._schema import outbox, outbox_pending

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


def claim_statement(dialect: str, limit: int) -> ReturningDelete[tuple[int]]:
    """The delete of `OutboxRepository.claim_unpublished` on `dialect`: the oldest `limit`
    pending ids, returned (PostgreSQL: skipping those another relay holds)."""
    pending = sa.select(outbox_pending.c.id).order_by(outbox_pending.c.id).limit(limit)
    claimed: sa.ColumnElement[bool]
    if dialect == "postgresql":
        # `id = ANY(ARRAY(subquery))`, not `id IN (subquery)`: the latter's generic plan
        # (a prepared statement, LIMIT a parameter) may hash-join a sequential scan
        pending = pending.with_for_update(skip_locked=True)
        claimed = outbox_pending.c.id == sa.any_(sa.func.array(pending.scalar_subquery()))
    else:
        claimed = outbox_pending.c.id.in_(pending.scalar_subquery())
    return outbox_pending.delete().where(claimed).returning(outbox_pending.c.id)


def claim_heads_statement(limit: int) -> sa.Select[Any]:
    """PostgreSQL's whole claim in one statement: the delete (`claim_statement`) as a
    data-modifying CTE, and the claimed events' heads read by primary key."""
    claimed = claim_statement("postgresql", limit).cte("claimed")
    ids = sa.func.array(sa.select(claimed.c.id).scalar_subquery())
    return sa.select(*_HEAD).where(outbox.c.id == sa.any_(ids))


# SQLite's read of the claimed ids' heads (the ids an expanding parameter)
_HEADS_BY_ID = sa.select(*_HEAD).where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))


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
        """Write one event (queued for the relay by the database) in the caller's
        transaction; returns its cursor id. With `target` (one of the tenant's endpoint
        URLs) only the endpoint there receives it."""
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
        insert_plain(conn, outbox, cls.rows(events, time.time()))
        cls.notified(conn)

    @staticmethod
    def rows(events: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """`add_many`'s events as the outbox rows it writes (every column given)."""
        return [
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

    @classmethod
    def notified(cls, conn: sa.Connection, *, sent: bool = False) -> None:
        """Notify `CHANNEL` once in the caller's transaction (`add`'s rule), or, with
        `sent`, note that the caller's own statement did (`JobRepository.write_events`)."""
        transaction = conn.get_transaction()
        if transaction is None or conn.info.get(_NOTIFIED) is not transaction:
            if not sent:
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
        """Take up to `limit` unpublished events off the relay's queue, oldest first, and
        return them (without their payloads), in the caller's transaction: a `DELETE …
        RETURNING` of the oldest pending ids, skipping those another relay holds
        (PostgreSQL; one statement with the heads' read), then the heads by id. They count
        as published only if the transaction commits (rolled back, their ids are pending
        again), so the caller fans them out in the same transaction; several relays never
        claim one event in two transactions that both commit."""
        if conn.dialect.name == "postgresql":
            heads = to_records(OutboxHead, conn.execute(claim_heads_statement(limit)))
        else:
            claim = claim_statement(conn.dialect.name, limit)
            ids = list(conn.execute(claim).scalars())
            heads = to_records(OutboxHead, conn.execute(_HEADS_BY_ID, {"ids": ids})) if ids else []
        heads.sort(key=_by_id)  # RETURNING and `= ANY` promise no order
        return heads

    def by_ids(self, ids: list[int]) -> dict[int, OutboxRecord]:
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox).where(outbox.c.id.in_(ids)))
            return {row.id: to_record(OutboxRecord, row) for row in rows}

    def peek_unpublished(self, limit: int) -> list[OutboxRecord]:
        """Unpublished events without locking them (what the bus sinks send first)."""
        oldest = sa.select(outbox_pending.c.id).order_by(outbox_pending.c.id).limit(limit)
        query = sa.select(outbox).where(outbox.c.id.in_(oldest.scalar_subquery()))
        with self.engine.connect() as conn:
            return to_records(OutboxRecord, conn.execute(query.order_by(outbox.c.id)))

    def pending_count(self) -> int:
        """Events not yet published (the ids in the relay's queue)."""
        query = sa.select(sa.func.count()).select_from(outbox_pending)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)
