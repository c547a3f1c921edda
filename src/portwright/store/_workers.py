"""Worker heartbeats, and claiming a dead worker's work exactly once."""

from __future__ import annotations

import os
import socket
import time

import sqlalchemy as sa

from portwright.store._records import WorkerRecord
from portwright.store._rows import to_records
from portwright.store._schema import workers

__all__ = ["WorkerRepository"]

# A worker in one of these states whose heartbeat went quiet may hold pending workflows.
_CLAIMABLE = ("alive", "stopped")


class WorkerRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def heartbeat(self, worker_id: str) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            result = conn.execute(
                workers.update()
                .where(workers.c.id == worker_id)
                .values(heartbeat_at=now, status="alive")
            )
            if result.rowcount == 0:
                conn.execute(
                    workers.insert().values(
                        id=worker_id,
                        hostname=socket.gethostname(),
                        pid=os.getpid(),
                        status="alive",
                        started_at=now,
                        heartbeat_at=now,
                    )
                )

    def live(self, since: float, *, exclude: str | None = None) -> int:
        """How many workers are alive with a heartbeat since `since` (`exclude` not counted):
        the fleet that shares a portal's chunk slots."""
        query = (
            sa.select(sa.func.count())
            .select_from(workers)
            .where(workers.c.status == "alive", workers.c.heartbeat_at >= since)
        )
        if exclude is not None:
            query = query.where(workers.c.id != exclude)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def stopped(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(workers.update().where(workers.c.id == worker_id).values(status="stopped"))

    def silent_since(self, cutoff: float, *, exclude: str) -> list[WorkerRecord]:
        """Workers not taken over whose last heartbeat is older than `cutoff`: the silent
        (`alive`, crashed) and the `stopped` (SIGTERM mid-job, never back) alike — a stopped
        worker's unfinished workflows are still pending under its id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(workers).where(
                    workers.c.status.in_(_CLAIMABLE),
                    workers.c.heartbeat_at < cutoff,
                    workers.c.id != exclude,
                )
            )
            return to_records(WorkerRecord, rows)

    def claim_dead(self, worker_id: str, *, by: str, cutoff: float) -> bool:
        """Atomically declare a silent or stopped worker dead; exactly one claimant gets True."""
        with self.engine.begin() as conn:
            result = conn.execute(
                workers.update()
                .where(
                    workers.c.id == worker_id,
                    workers.c.status.in_(_CLAIMABLE),
                    workers.c.heartbeat_at < cutoff,
                )
                .values(status="dead", taken_over_by=by, taken_over_at=time.time())
            )
            return result.rowcount == 1

    def set_recovered(self, worker_id: str, count: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(workers.update().where(workers.c.id == worker_id).values(recovered=count))

    def all(self) -> list[WorkerRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(workers).order_by(workers.c.started_at))
            return to_records(WorkerRecord, rows)
