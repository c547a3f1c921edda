"""The resilience kit's breakers, stored in the database and shared by every process.

`SqlBreakerStorage` keeps a breaker's status in `breakers` (one row per name, locked for
each move) and its window in `breaker_outcomes` (a row per outcome and time, counting the
calls that ended so then: a chunk's successes are one row; rows that leave the window are
deleted as it slides). The portal breakers use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from portwright.resilience import BreakerState, BreakerStatus, Window
from portwright.store._bulk import insert_plain
from portwright.store._schema import audit_log, breaker_outcomes, breakers

__all__ = ["SqlBreakerStorage"]

_STATES: tuple[BreakerState, ...] = ("closed", "open", "half_open")


def _status(row: sa.Row[tuple[object, ...]] | None) -> BreakerStatus:
    if row is None:
        return BreakerStatus()
    state: BreakerState = next((s for s in _STATES if s == row.state), "closed")
    return BreakerStatus(state, row.opened_at, row.open_until, row.probe_lease_until, row.reason)


class _SqlWindow:
    """A breaker's outcomes, inside the caller's transaction."""

    def __init__(self, conn: sa.Connection, name: str) -> None:
        self.conn = conn
        self.name = name

    def add(self, ok: bool, at: float) -> None:
        self.conn.execute(breaker_outcomes.insert().values(name=self.name, ok=ok, at=at))

    def counts(self, since: float) -> tuple[int, int]:
        t = breaker_outcomes.c
        self.conn.execute(breaker_outcomes.delete().where(t.name == self.name, t.at < since))
        total, failures = self.conn.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(t.calls), 0),
                sa.func.coalesce(sa.func.sum(sa.case((t.ok, 0), else_=t.calls)), 0),
            ).where(t.name == self.name, t.at >= since)
        ).one()
        return int(total), int(failures)

    def clear(self) -> None:
        self.conn.execute(breaker_outcomes.delete().where(breaker_outcomes.c.name == self.name))


class SqlBreakerStorage:
    """A `BreakerStorage` on the `breakers` and `breaker_outcomes` tables."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock  # stamps `updated_at`

    def read(self, name: str) -> BreakerStatus:
        with self.engine.connect() as conn:
            return _status(conn.execute(sa.select(breakers).where(breakers.c.name == name)).first())

    def append(self, name: str, ok: bool, at: float) -> None:
        with self.engine.begin() as conn:
            self.append_in(conn, name, [ok], at)

    @staticmethod
    def append_in(conn: sa.Connection, name: str, oks: Sequence[bool], at: float) -> None:
        """Append outcomes in the caller's transaction (a closed breaker's batch), in one
        prebuilt statement (`insert_plain`): a row for the successes and one for the
        failures, each counting its calls (all at `at`, they enter and leave the window
        together, so the window counts what a row per outcome counted)."""
        successes = sum(1 for ok in oks if ok)
        rows = [
            {"name": name, "ok": ok, "at": at, "calls": calls}
            for ok, calls in ((True, successes), (False, len(oks) - successes))
            if calls
        ]
        insert_plain(conn, breaker_outcomes, rows)

    def change(
        self, name: str, step: Callable[[BreakerStatus, Window], BreakerStatus]
    ) -> BreakerStatus:
        with self.engine.begin() as conn:
            self._ensure(conn, name)
            row = conn.execute(
                sa.select(breakers).where(breakers.c.name == name).with_for_update()
            ).one()
            status = _status(row)
            new = step(status, _SqlWindow(conn, name))
            if new != status:
                conn.execute(
                    breakers.update()
                    .where(breakers.c.name == name)
                    .values(
                        state=new.state,
                        opened_at=new.opened_at,
                        open_until=new.open_until,
                        probe_lease_until=new.probe_lease_until,
                        reason=new.reason,
                        updated_at=self.clock(),
                    )
                )
                opened = new.state == "open" and (
                    status.state != "open" or status.open_until != new.open_until
                )
                if opened and name.startswith("portal:"):
                    _audit_opening(conn, name.removeprefix("portal:"), status, new, self.clock())
            return new

    def _ensure(self, conn: sa.Connection, name: str) -> None:
        """Create the breaker row if missing; safe when several processes race to do it."""
        exists = conn.execute(sa.select(breakers.c.name).where(breakers.c.name == name)).first()
        if exists is not None:
            return
        try:
            with conn.begin_nested():
                conn.execute(
                    breakers.insert().values(name=name, state="closed", updated_at=self.clock())
                )
        except sa.exc.IntegrityError:
            pass  # another process created it between our read and insert


def _audit_opening(
    conn: sa.Connection, portal: str, before: BreakerStatus, after: BreakerStatus, now: float
) -> None:
    """A portal breaker that opens holds the portal's jobs like a cooldown: audited like
    one (`portal.cooldown`, cause "breaker"), so a long wait always has a recorded reason."""
    conn.execute(
        audit_log.insert().values(
            tenant_id=None,
            actor="engine",
            action="portal.cooldown",
            target_type="portal",
            target_id=portal,
            before={"breaker": before.state, "cooldown_until": before.open_until},
            after={"breaker": after.state, "cooldown_until": after.open_until, "cause": "breaker"},
            reason=after.reason or "circuit breaker opened",
            created_at=now,
        )
    )
