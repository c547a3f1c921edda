"""Portal-wide state (pause, cooldown, degraded) and circuit breakers shared by all processes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._records import BreakerRecord, PortalRecord
from portwright.store._rows import to_record
from portwright.store._schema import breaker_outcomes, breakers, portals

__all__ = ["BreakerPolicy", "PortalRepository"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Open when at least `min_calls` outcomes in `window_s` fail at `failure_rate` or more."""

    window_s: float = 30.0
    min_calls: int = 10
    failure_rate: float = 0.5
    open_s: float = 15.0
    probe_lease_s: float = 30.0


class PortalRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- portals -------------------------------------------------------------------------

    def ensure(self, name: str, *, max_concurrency: int) -> PortalRecord:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(portals).where(portals.c.name == name)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            portals.insert().values(
                                name=name, max_concurrency=max_concurrency, updated_at=time.time()
                            )
                        )
                except sa.exc.IntegrityError:
                    pass  # another process registered it first
                row = conn.execute(sa.select(portals).where(portals.c.name == name)).one()
            return to_record(PortalRecord, row)

    def get(self, name: str) -> PortalRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(portals).where(portals.c.name == name)).first()
        if row is None:
            raise LookupError(f"no portal {name!r}")
        return to_record(PortalRecord, row)

    def all(self) -> list[PortalRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(portals).order_by(portals.c.name))
            return [to_record(PortalRecord, row) for row in rows]

    def extend_cooldown(self, name: str, *, until: float, reason: str) -> float:
        """Cool the portal down until at least `until`; returns the effective end."""
        with self.engine.begin() as conn:
            conn.execute(
                portals.update()
                .where(
                    portals.c.name == name,
                    sa.or_(portals.c.cooldown_until.is_(None), portals.c.cooldown_until < until),
                )
                .values(cooldown_until=until, cooldown_reason=reason, updated_at=time.time())
            )
            value = conn.execute(
                sa.select(portals.c.cooldown_until).where(portals.c.name == name)
            ).scalar_one()
            return float(value)

    def set_paused(self, name: str, *, paused: bool, reason: str | None) -> PortalRecord:
        with self.engine.begin() as conn:
            conn.execute(
                portals.update()
                .where(portals.c.name == name)
                .values(paused=paused, paused_reason=reason, updated_at=time.time())
            )
            return to_record(
                PortalRecord, conn.execute(sa.select(portals).where(portals.c.name == name)).one()
            )

    def set_degraded(self, name: str, *, reason: str | None) -> None:
        """Mark degraded (keeping the first `since`) or, with reason None, healthy again."""
        with self.engine.begin() as conn:
            if reason is None:
                conn.execute(
                    portals.update()
                    .where(portals.c.name == name, portals.c.degraded_since.is_not(None))
                    .values(degraded_since=None, degraded_reason=None, updated_at=time.time())
                )
            else:
                conn.execute(
                    portals.update()
                    .where(portals.c.name == name)
                    .values(
                        degraded_since=sa.func.coalesce(portals.c.degraded_since, time.time()),
                        degraded_reason=reason,
                        updated_at=time.time(),
                    )
                )

    # -- circuit breakers ----------------------------------------------------------------

    def breaker(self, name: str) -> BreakerRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(breakers).where(breakers.c.name == name)).first()
        if row is None:
            return BreakerRecord(name, "closed", None, None, None, None, 0.0)
        return to_record(BreakerRecord, row)

    def add_outcomes(self, conn: sa.Connection, name: str, oks: list[bool]) -> None:
        """Append outcomes to a closed breaker in the caller's transaction (what
        `record_outcome` does for a success on a closed breaker, for several at once)."""
        now = time.time()
        conn.execute(breaker_outcomes.insert(), [{"name": name, "ok": ok, "at": now} for ok in oks])

    def record_outcome(self, name: str, *, ok: bool, policy: BreakerPolicy) -> BreakerRecord:
        """Record one call's outcome and move the breaker; returns its new state.

        A success on a closed breaker cannot move it, so it only appends its outcome row
        (no lock, no window count); failures and half-open probes take the full path.
        """
        now = time.time()
        if ok:
            current = self.breaker(name)
            if current.state == "closed":
                with self.engine.begin() as conn:
                    conn.execute(breaker_outcomes.insert().values(name=name, ok=True, at=now))
                return current
        with self.engine.begin() as conn:
            conn.execute(breaker_outcomes.insert().values(name=name, ok=ok, at=now))
            self._ensure_breaker(conn, name, now)
            row = conn.execute(
                sa.select(breakers).where(breakers.c.name == name).with_for_update()
            ).one()
            state = row.state
            reason: str | None
            if state == "half_open":
                new_state = "closed" if ok else "open"
                reason = "probe succeeded" if ok else "probe failed"
            else:
                total, failures = conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.coalesce(
                            sa.func.sum(sa.case((breaker_outcomes.c.ok, 0), else_=1)), 0
                        ),
                    ).where(
                        breaker_outcomes.c.name == name,
                        breaker_outcomes.c.at >= now - policy.window_s,
                    )
                ).one()
                tripped = total >= policy.min_calls and failures / total >= policy.failure_rate
                new_state = "open" if state == "closed" and tripped else state
                reason = f"{failures}/{total} failed in {policy.window_s:g}s" if tripped else None
            if new_state != state:
                values = {
                    "state": new_state,
                    "reason": reason,
                    "updated_at": now,
                    "probe_lease_until": None,
                    "opened_at": now if new_state == "open" else None,
                    "open_until": now + policy.open_s if new_state == "open" else None,
                }
                conn.execute(breakers.update().where(breakers.c.name == name).values(**values))
            conn.execute(
                breaker_outcomes.delete().where(
                    breaker_outcomes.c.name == name,
                    breaker_outcomes.c.at < now - 10 * policy.window_s,
                )
            )
        return self.breaker(name)

    @staticmethod
    def _ensure_breaker(conn: sa.Connection, name: str, now: float) -> None:
        """Create the breaker row if missing; safe when several processes race to do it."""
        exists = conn.execute(sa.select(breakers.c.name).where(breakers.c.name == name)).first()
        if exists is not None:
            return
        try:
            with conn.begin_nested():
                conn.execute(breakers.insert().values(name=name, state="closed", updated_at=now))
        except sa.exc.IntegrityError:
            pass  # another process created it between our read and insert

    def allow(self, name: str, *, policy: BreakerPolicy) -> tuple[bool, float | None]:
        """May a call go through? (allowed, retry_at). An expired open breaker lets one probe in."""
        now = time.time()
        current = self.breaker(name)  # read-only fast path: most calls meet a closed breaker
        if current.state == "closed":
            return True, None
        if current.state == "open" and current.open_until is not None and current.open_until > now:
            return False, float(current.open_until)
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(breakers).where(breakers.c.name == name).with_for_update()
            ).first()
            if row is None or row.state == "closed":
                return True, None
            if row.state == "open" and row.open_until is not None and row.open_until > now:
                return False, float(row.open_until)
            lease = row.probe_lease_until
            if lease is not None and lease > now:
                return False, float(lease)
            conn.execute(
                breakers.update()
                .where(breakers.c.name == name)
                .values(
                    state="half_open", probe_lease_until=now + policy.probe_lease_s, updated_at=now
                )
            )
            return True, None
