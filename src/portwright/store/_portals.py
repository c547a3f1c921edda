"""Portal-wide state (pause, cooldown, degraded) and circuit breakers shared by all processes."""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa

from portwright.resilience import Breaker, BreakerPolicy
from portwright.store._breakers import SqlBreakerStorage
from portwright.store._records import BreakerRecord, PortalRecord
from portwright.store._rows import to_record, to_records
from portwright.store._schema import audit_log, breakers, portals

__all__ = ["BreakerPolicy", "PortalRepository"]

# Reads of every chunk's sub-chunk, built once: a statement object keeps its SQLAlchemy
# cache key, which one built per call generates again each time.
_READ = sa.select(portals).where(portals.c.name == sa.bindparam("name"))
_BREAKER_STATES = sa.select(breakers.c.name, breakers.c.state).where(
    breakers.c.name.in_(sa.bindparam("names", expanding=True))
)


class PortalRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.breakers = SqlBreakerStorage(engine)

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
            return self.read(conn, name)

    @staticmethod
    def read(conn: sa.Connection, name: str) -> PortalRecord:
        """`get` in the caller's connection."""
        row = conn.execute(_READ, {"name": name}).first()
        if row is None:
            raise LookupError(f"no portal {name!r}")
        return to_record(PortalRecord, row)

    def all(self) -> list[PortalRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(portals).order_by(portals.c.name))
            return to_records(PortalRecord, rows)

    def extend_cooldown(
        self, name: str, *, until: float, reason: str, cause: str, actor: str = "engine"
    ) -> float:
        """Cool the portal down until at least `until`; returns the effective end.

        An extension (a later end than the current one) is audited in the same transaction
        with its `cause` ("429", "provider_failing", "operator", ...), the end before and
        after, and why; a request that ends no later than the current window changes nothing.
        """
        with self.engine.begin() as conn:
            return extend_cooldown_row(
                conn, portals, name, until=until, reason=reason, audit=(
                    "portal.cooldown", "portal", None, actor, cause),
            )  # fmt: skip

    def end_cooldown(self, name: str, *, reason: str, actor: str) -> float | None:
        """End the portal's cooldown now (an operator's call); returns the end it had, or
        None when it was not cooling down (then nothing changes and nothing is audited).

        Audited in the same transaction as a `portal.cooldown` row with cause "operator"
        and `ended: true`.
        """
        now = time.time()
        with self.engine.begin() as conn:
            before = conn.execute(
                sa.select(portals.c.cooldown_until).where(portals.c.name == name)
            ).scalar_one_or_none()
            ended = conn.execute(
                portals.update()
                .where(portals.c.name == name, portals.c.cooldown_until > now)
                .values(cooldown_until=now, cooldown_reason=reason, updated_at=now)
            ).rowcount
            if not ended:
                return None
            conn.execute(
                audit_log.insert().values(
                    tenant_id=None,
                    actor=actor,
                    action="portal.cooldown",
                    target_type="portal",
                    target_id=name,
                    before={"cooldown_until": before},
                    after={"cooldown_until": now, "cause": "operator", "ended": True},
                    reason=reason,
                    created_at=now,
                )
            )
            return float(before) if before is not None else None

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

    # -- circuit breakers (the resilience kit's, stored in the database) ----------------

    def breaker(self, name: str) -> BreakerRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(breakers).where(breakers.c.name == name)).first()
        if row is None:
            return BreakerRecord(name, "closed", None, None, None, None, 0.0)
        return to_record(BreakerRecord, row)

    @staticmethod
    def breaker_state(conn: sa.Connection, name: str) -> str:
        """The breaker's state in the caller's transaction ("closed" if it has no row)."""
        return PortalRepository.breaker_states(conn, [name])[name]

    @staticmethod
    def breaker_states(conn: sa.Connection, names: Sequence[str]) -> dict[str, str]:
        """`breaker_state` of each of `names`, in one statement: {name: state}."""
        if not names:
            return {}
        rows = conn.execute(_BREAKER_STATES, {"names": sorted(set(names))})
        found = {str(name): str(state) for name, state in rows}
        return {name: found.get(name, "closed") for name in names}

    def portal_breaker(self, portal: str) -> BreakerRecord:
        """The breaker of a whole portal (the runtime's `portal:<name>`; a site's breakers
        are `site:<portal>:<host>`)."""
        return self.breaker(f"portal:{portal}")

    def add_outcomes(self, conn: sa.Connection, name: str, oks: list[bool]) -> None:
        """Append outcomes to a closed breaker in the caller's transaction (what
        `record_outcome` does for a success on a closed breaker, for several at once)."""
        self.breakers.append_in(conn, name, oks, time.time())

    def record_outcome(self, name: str, *, ok: bool, policy: BreakerPolicy) -> BreakerRecord:
        """Record one call's outcome and move the breaker; returns its new state.

        A success on a closed breaker cannot move it, so it only appends its outcome row
        (no lock, no window count); failures and half-open probes take the full path.
        """
        Breaker(name, policy, storage=self.breakers, clock=time.time).record(ok=ok)
        return self.breaker(name)

    def allow(self, name: str, *, policy: BreakerPolicy) -> tuple[bool, float | None]:
        """May a call go through? (allowed, retry_at). An expired open breaker lets one probe in."""
        return Breaker(name, policy, storage=self.breakers, clock=time.time).check()


def extend_cooldown_row(
    conn: sa.Connection,
    table: sa.Table,
    name: str,
    *,
    until: float,
    reason: str,
    audit: tuple[str, str, str | None, str, str],
) -> float:
    """Push the cooldown of `table`'s row `name` (a portal or a site) to at least `until`
    and return the effective end. An extension is audited in the same transaction:
    `audit` is (action, target type, tenant id, actor, cause)."""
    action, target_type, tenant_id, actor, cause = audit
    before = conn.execute(
        sa.select(table.c.cooldown_until).where(table.c.name == name)
    ).scalar_one_or_none()
    extended = conn.execute(
        table.update()
        .where(
            table.c.name == name,
            sa.or_(table.c.cooldown_until.is_(None), table.c.cooldown_until < until),
        )
        .values(cooldown_until=until, cooldown_reason=reason, updated_at=time.time())
    ).rowcount
    if extended:
        conn.execute(
            audit_log.insert().values(
                tenant_id=tenant_id,
                actor=actor,
                action=action,
                target_type=target_type,
                target_id=name,
                before={"cooldown_until": before},
                after={"cooldown_until": until, "cause": cause},
                reason=reason,
                created_at=time.time(),
            )
        )
    value = conn.execute(sa.select(table.c.cooldown_until).where(table.c.name == name)).scalar_one()
    return float(value)
