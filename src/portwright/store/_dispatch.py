"""Dispatch assignments: which driver carries which shop order (scenario 5)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._rows import to_record
from portwright.store._schema import dispatch_assignments

__all__ = ["AssignmentRecord", "DispatchRepository"]

ACTIVE = ("assigned", "picked_up")


@dataclass(frozen=True, slots=True)
class AssignmentRecord:
    order_key: str
    tenant_id: str
    platform: str
    order_id: str
    driver_id: str | None
    status: str
    version: int
    updated_at: float


class DispatchRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @staticmethod
    def lock(conn: sa.Connection, order_key: str) -> AssignmentRecord | None:
        query = sa.select(dispatch_assignments).where(dispatch_assignments.c.order_key == order_key)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        return None if row is None else to_record(AssignmentRecord, row)

    @staticmethod
    def loads(conn: sa.Connection, tenant_id: str) -> dict[str, int]:
        """driver → active orders."""
        c = dispatch_assignments.c
        query = (
            sa.select(c.driver_id, sa.func.count())
            .where(c.tenant_id == tenant_id, c.status.in_(ACTIVE), c.driver_id.is_not(None))
            .group_by(c.driver_id)
        )
        return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    @staticmethod
    def save(conn: sa.Connection, record: AssignmentRecord) -> AssignmentRecord:
        """Insert or update (the caller holds the row's lock from `lock`)."""
        values = {
            "tenant_id": record.tenant_id,
            "platform": record.platform,
            "order_id": record.order_id,
            "driver_id": record.driver_id,
            "status": record.status,
            "version": record.version,
            "updated_at": time.time(),
        }
        c = dispatch_assignments.c
        updated = conn.execute(
            dispatch_assignments.update().where(c.order_key == record.order_key).values(**values)
        )
        if not updated.rowcount:
            conn.execute(dispatch_assignments.insert().values(order_key=record.order_key, **values))
        return record

    def get(self, order_key: str) -> AssignmentRecord | None:
        with self.engine.connect() as conn:
            return self._read(conn, order_key)

    @staticmethod
    def _read(conn: sa.Connection, order_key: str) -> AssignmentRecord | None:
        row = conn.execute(
            sa.select(dispatch_assignments).where(dispatch_assignments.c.order_key == order_key)
        ).first()
        return None if row is None else to_record(AssignmentRecord, row)

    def of_driver(self, tenant_id: str, driver_id: str) -> list[AssignmentRecord]:
        c = dispatch_assignments.c
        query = sa.select(dispatch_assignments).where(
            c.tenant_id == tenant_id, c.driver_id == driver_id
        )
        with self.engine.connect() as conn:
            return [to_record(AssignmentRecord, row) for row in conn.execute(query)]

    def all(self, tenant_id: str) -> list[AssignmentRecord]:
        query = sa.select(dispatch_assignments).where(dispatch_assignments.c.tenant_id == tenant_id)
        with self.engine.connect() as conn:
            return [to_record(AssignmentRecord, row) for row in conn.execute(query)]
