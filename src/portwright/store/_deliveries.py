"""Deliveries: one row per (endpoint, event), leased by relays, retried, dead-lettered.

The (endpoint_id, event_id) unique key makes fan-out idempotent: a relay that
crashes after inserting deliveries but before marking the event published
inserts nothing new the second time. Dead deliveries are the dead-letter
queue; `replay` puts them back to pending with a fresh attempt budget (and, on
PostgreSQL, notifies the outbox channel on commit so every relay looks at once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portwright._ids import new_id
from portwright.store._endpoints import EndpointRecord
from portwright.store._outbox import OutboxHead, OutboxRecord, OutboxRepository
from portwright.store._rows import to_record, to_records
from portwright.store._schema import deliveries, delivery_attempts, webhook_endpoints

__all__ = ["AttemptRecord", "DeliveryFilter", "DeliveryRecord", "DeliveryRepository"]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: str
    outbox_id: int
    event_id: str
    endpoint_id: str
    tenant_id: str
    topic: str
    platform: str | None
    status: str
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    event_at: float
    created_at: float
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    delivery_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: float
    at: float


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which deliveries a search or a replay covers (all given fields must match)."""

    tenant_id: str | None = None
    endpoint_id: str | None = None
    platform: str | None = None
    topic: str | None = None
    since: float | None = None
    until: float | None = None
    job_id: str | None = None  # the deliveries of this job's events (`<job id>:<seq>`)

    def clause(self) -> sa.ColumnElement[bool]:
        c = deliveries.c
        parts: list[sa.ColumnElement[bool]] = [sa.true()]
        for column, value in (
            (c.tenant_id, self.tenant_id),
            (c.endpoint_id, self.endpoint_id),
            (c.platform, self.platform),
            (c.topic, self.topic),
        ):
            if value is not None:
                parts.append(column == value)
        if self.since is not None:
            parts.append(c.event_at >= self.since)
        if self.until is not None:
            parts.append(c.event_at < self.until)
        if self.job_id is not None:
            parts.append(c.event_id.startswith(f"{self.job_id}:", autoescape=True))
        return sa.and_(*parts)


class DeliveryRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @staticmethod
    def fan_out(
        conn: sa.Connection, event: OutboxHead | OutboxRecord, endpoints: list[EndpointRecord]
    ) -> int:
        """Insert one pending delivery per endpoint (existing ones are left alone)."""
        rows = [
            {
                "id": new_id("dlv"),
                "outbox_id": event.id,
                "event_id": event.event_id,
                "endpoint_id": endpoint.id,
                "tenant_id": endpoint.tenant_id,
                "topic": event.topic,
                "platform": event.platform,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": time.time(),
                "event_at": event.created_at,
                "created_at": time.time(),
            }
            for endpoint in endpoints
        ]
        if not rows:
            return 0
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(deliveries).values(rows).on_conflict_do_nothing()
        return conn.execute(stmt).rowcount or 0

    def claim(self, *, worker: str, limit: int, lease_s: float) -> list[DeliveryRecord]:
        """Lease due deliveries whose endpoint's breaker is not open; counts an attempt."""
        now = time.time()
        c = deliveries.c
        open_endpoints = sa.select(webhook_endpoints.c.id).where(
            webhook_endpoints.c.breaker_open_until > now
        )
        due = sa.or_(
            (c.status == "pending") & (c.next_attempt_at <= now),
            (c.status == "delivering") & (c.lease_until < now),
        )
        with self.engine.connect() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    sa.select(c.id)
                    .where(due, c.endpoint_id.not_in(open_endpoints))
                    .order_by(c.next_attempt_at)
                    .limit(limit)
                )
            ]
        if not ids:
            return []
        lease_until = now + lease_s
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(c.id.in_(ids), due)
                .values(
                    status="delivering",
                    lease_until=lease_until,
                    leased_by=worker,
                    attempts=c.attempts + 1,
                )
            )
            rows = conn.execute(
                sa.select(deliveries).where(
                    c.id.in_(ids), c.leased_by == worker, c.lease_until == lease_until
                )
            ).all()
        return to_records(DeliveryRecord, rows)

    def finish(
        self,
        delivery: DeliveryRecord,
        *,
        status: str,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        retry_at: float | None = None,
    ) -> None:
        """Record the attempt and its outcome: "delivered", "dead", or back to "pending"."""
        now = time.time()
        values: dict[str, object] = {
            "status": status,
            "last_status": status_code,
            "last_error": error,
            "lease_until": None,
        }
        if status == "pending":
            values["next_attempt_at"] = retry_at or now
        else:
            values["finished_at"] = now
        with self.engine.begin() as conn:
            conn.execute(
                delivery_attempts.insert().values(
                    delivery_id=delivery.id,
                    attempt=delivery.attempts,
                    status_code=status_code,
                    error=error,
                    duration_ms=duration_ms,
                    at=now,
                )
            )
            conn.execute(deliveries.update().where(deliveries.c.id == delivery.id).values(**values))

    def get(self, delivery_id: str) -> DeliveryRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).first()
        if row is None:
            raise LookupError(f"no delivery {delivery_id}")
        return to_record(DeliveryRecord, row)

    def search(
        self,
        where: DeliveryFilter,
        *,
        status: str | None = None,
        limit: int = 500,
        newest_first: bool = False,
        before: tuple[float, str] | None = None,
    ) -> list[DeliveryRecord]:
        """Oldest event first, or with `newest_first` newest first (ties by id) and, with
        `before` (the last row shown's `(event_at, id)`), only the rows after it: a page."""
        c = deliveries.c
        order = [c.event_at.desc(), c.id.desc()] if newest_first else [c.event_at]
        query = sa.select(deliveries).where(where.clause()).order_by(*order)
        if status is not None:
            query = query.where(c.status == status)
        if before is not None:
            at, last_id = before
            query = query.where(sa.or_(c.event_at < at, sa.and_(c.event_at == at, c.id < last_id)))
        with self.engine.connect() as conn:
            return to_records(DeliveryRecord, conn.execute(query.limit(limit)))

    def count(self, where: DeliveryFilter, *, status: str | None = None) -> int:
        """How many deliveries match (a list's total beside the page it shows)."""
        query = sa.select(sa.func.count()).select_from(deliveries).where(where.clause())
        if status is not None:
            query = query.where(deliveries.c.status == status)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def attempts(self, delivery_id: str) -> list[AttemptRecord]:
        query = (
            sa.select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == delivery_id)
            .order_by(delivery_attempts.c.id)
        )
        with self.engine.connect() as conn:
            return to_records(AttemptRecord, conn.execute(query))

    def replay(self, where: DeliveryFilter) -> int:
        """Put matching dead letters back to pending with a fresh attempt budget."""
        c = deliveries.c
        with self.engine.begin() as conn:
            result = conn.execute(
                deliveries.update()
                .where(where.clause(), c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=time.time(), finished_at=None)
            )
            if result.rowcount:
                OutboxRepository.notify(conn)  # relays in other processes look now
        return result.rowcount or 0

    def replay_ids(self, ids: list[str]) -> list[str]:
        """Put these deliveries back to pending if they are (still) dead; returns those moved."""
        if not ids:
            return []
        c = deliveries.c
        with self.engine.begin() as conn:
            moved = [
                row[0]
                for row in conn.execute(sa.select(c.id).where(c.id.in_(ids), c.status == "dead"))
            ]
            if moved:
                conn.execute(
                    deliveries.update()
                    .where(c.id.in_(moved), c.status == "dead")
                    .values(
                        status="pending", attempts=0, next_attempt_at=time.time(), finished_at=None
                    )
                )
                OutboxRepository.notify(conn)  # relays in other processes look now
        return moved

    def counts(self) -> dict[tuple[str, str | None, str], int]:
        """(endpoint_id, platform, status) → how many."""
        c = deliveries.c
        query = sa.select(c.endpoint_id, c.platform, c.status, sa.func.count()).group_by(
            c.endpoint_id, c.platform, c.status
        )
        with self.engine.connect() as conn:
            return {(r[0], r[1], r[2]): int(r[3]) for r in conn.execute(query)}

    def oldest_late(self, *, late_after_s: float = 30.0) -> dict[str, float]:
        """endpoint_id → event time of its oldest delivery still owed: a dead letter, or one
        pending (or being sent) for over `late_after_s` since its event, such as a replayed
        backlog still draining. What "sync delayed since …" reports."""
        c = deliveries.c
        owed = (c.status == "dead") | (
            c.status.in_(("pending", "delivering")) & (c.event_at < time.time() - late_after_s)
        )
        query = (
            sa.select(c.endpoint_id, sa.func.min(c.event_at)).where(owed).group_by(c.endpoint_id)
        )
        with self.engine.connect() as conn:
            return {r[0]: float(r[1]) for r in conn.execute(query)}
