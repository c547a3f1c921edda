"""Batches: how many of a batch's items have ended, counted in the transaction that ends them.

A batch with a webhook gets a row when it is accepted (`create`). Every transaction that
ends some of its items calls `count_ended` with them; the row's UPDATE locks it, so of
two transactions ending the last items at once, exactly one sees `remaining` reach 0 and
marks the batch finished (and writes its one completion event, see the orchestrator).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._rows import to_record
from portwright.store._schema import batches
from portwright.store._scope import tenant_transaction

__all__ = ["BatchRecord", "BatchRepository"]

OUTCOMES = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class BatchRecord:
    id: str
    tenant_id: str
    webhook: str | None
    total: int
    remaining: int
    succeeded: int
    failed: int
    cancelled: int
    created_at: float
    finished_at: float | None


# `count_ended`'s statements, built once (each record transaction of a chunk runs them: a
# statement built per call generates its SQLAlchemy cache key again each time).
_FINISH = (
    batches.update()
    .where(
        batches.c.id == sa.bindparam("b_id"),
        batches.c.remaining <= 0,
        batches.c.finished_at.is_(None),
    )
    .values(finished_at=sa.bindparam("b_now", type_=sa.Float))
)
_COUNTING: dict[tuple[str, ...], sa.Update] = {}


def _counting(outcomes: tuple[str, ...]) -> sa.Update:
    """The UPDATE counting ended items into `remaining` and each of `outcomes`."""
    statement = _COUNTING.get(outcomes)
    if statement is None:
        c = batches.c
        ended = sa.bindparam("b_ended", type_=sa.Integer)
        values: dict[str, object] = {"remaining": c.remaining - ended}
        for outcome in outcomes:
            values[outcome] = c[outcome] + sa.bindparam(f"b_{outcome}", type_=sa.Integer)
        statement = _COUNTING[outcomes] = (
            batches.update()
            .where(c.id == sa.bindparam("b_id"), c.finished_at.is_(None), c.remaining >= ended)
            .values(**values)
        )
    return statement


class BatchRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, batch_id: str, *, tenant_id: str, total: int, webhook: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                batches.insert().values(
                    id=batch_id,
                    tenant_id=tenant_id,
                    webhook=webhook,
                    total=total,
                    remaining=total,
                    succeeded=0,
                    failed=0,
                    cancelled=0,
                    created_at=time.time(),
                )
            )

    def discard(self, batch_id: str) -> None:
        """Forget a batch whose items were never accepted (the submission failed)."""
        with self.engine.begin() as conn:
            conn.execute(batches.delete().where(batches.c.id == batch_id))

    def get(self, batch_id: str, *, tenant_id: str | None = None) -> BatchRecord | None:
        query = sa.select(batches).where(batches.c.id == batch_id)
        if tenant_id is not None:
            query = query.where(batches.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(BatchRecord, row)

    @staticmethod
    def count_ended(
        conn: sa.Connection, batch_id: str, counts: dict[str, int]
    ) -> BatchRecord | None:
        """Count items of the batch that ended ({outcome: n}) in the caller's transaction;
        returns the batch if these were its last ones (it is marked finished), else None."""
        ended = sum(counts.values())
        if ended <= 0:
            return None
        outcomes = tuple(outcome for outcome in OUTCOMES if counts.get(outcome))
        params: dict[str, object] = {"b_id": batch_id, "b_ended": ended}
        params.update({f"b_{outcome}": counts[outcome] for outcome in outcomes})
        result = conn.execute(_counting(outcomes), params)
        if not result.rowcount:
            return None  # no such batch (no webhook), or finished already
        done = conn.execute(_FINISH, {"b_id": batch_id, "b_now": time.time()})
        if not done.rowcount:
            return None
        row = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).first()
        return None if row is None else to_record(BatchRecord, row)
