"""Fleet state shared by every worker: the engine ladder's tier memory and proxy burns.

Tier memory keeps, per site and rung of the engine ladder, exponentially
decayed counts of successes and block failures, so all workers start a site
at the cheapest rung that has worked. Proxy burns record an identity a site
refused (a 403 from the edge, a block page), scoped to that site or global
("*"), until an expiry or forever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._rows import to_records
from portwright.store._schema import proxy_burns, tier_memory

__all__ = ["FleetRepository", "ProxyBurnRecord", "TierStatRecord"]

GLOBAL_SCOPE = "*"


@dataclass(frozen=True, slots=True)
class TierStatRecord:
    """How one rung of the ladder has fared on one site (decayed counts)."""

    site: str
    rung: str
    successes: float
    failures: float
    last_ok_at: float | None
    last_fail_at: float | None
    updated_at: float

    @property
    def attempts(self) -> float:
        return self.successes + self.failures

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempts if self.attempts > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ProxyBurnRecord:
    """A proxy identity refused by `scope` (a site, or "*" for every site)."""

    proxy: str
    scope: str
    reason: str
    burned_at: float
    until: float | None


class FleetRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- tier memory ---------------------------------------------------------------------

    def tier_stats(self, site: str) -> list[TierStatRecord]:
        with self.engine.connect() as conn:
            query = sa.select(tier_memory).where(tier_memory.c.site == site)
            rows = conn.execute(query.order_by(tier_memory.c.rung))
            return to_records(TierStatRecord, rows)

    def record_tier(
        self, site: str, rung: str, *, ok: bool, decay: float = 0.95, count: int = 1
    ) -> None:
        """Fold `count` equal outcomes (one after another) into the (site, rung) counts in
        one atomic UPDATE (or the INSERT): each decays what came before it by `decay`."""
        now = time.time()
        count = max(1, count)
        kept = decay**count  # what is left of the old counts after `count` outcomes
        added = float(count) if decay == 1.0 else (1.0 - kept) / (1.0 - decay)
        win, loss = (added, 0.0) if ok else (0.0, added)
        stamp = {"last_ok_at": now} if ok else {"last_fail_at": now}
        key = (tier_memory.c.site == site) & (tier_memory.c.rung == rung)
        update = (
            tier_memory.update()
            .where(key)
            .values(
                successes=tier_memory.c.successes * kept + win,
                failures=tier_memory.c.failures * kept + loss,
                updated_at=now,
                **stamp,
            )
        )
        with self.engine.begin() as conn:
            if conn.execute(update).rowcount:
                return
            try:
                with conn.begin_nested():
                    conn.execute(
                        tier_memory.insert().values(
                            site=site,
                            rung=rung,
                            successes=win,
                            failures=loss,
                            updated_at=now,
                            **stamp,
                        )
                    )
            except sa.exc.IntegrityError:
                conn.execute(update)  # another worker inserted it first

    def forget_tiers(self, site: str) -> int:
        """Drop what was learned about a site (an operator's reset); returns rows removed."""
        with self.engine.begin() as conn:
            return conn.execute(tier_memory.delete().where(tier_memory.c.site == site)).rowcount

    # -- proxy burns ---------------------------------------------------------------------

    def burn(self, proxy: str, scope: str, *, reason: str, until: float | None) -> None:
        """Record (or renew) a burn of `proxy` for `scope`."""
        now = time.time()
        key = (proxy_burns.c.proxy == proxy) & (proxy_burns.c.scope == scope)
        with self.engine.begin() as conn:
            done = conn.execute(
                proxy_burns.update().where(key).values(reason=reason, burned_at=now, until=until)
            ).rowcount
            if done:
                return
            try:
                with conn.begin_nested():
                    conn.execute(
                        proxy_burns.insert().values(
                            proxy=proxy, scope=scope, reason=reason, burned_at=now, until=until
                        )
                    )
            except sa.exc.IntegrityError:
                pass  # burned concurrently by another worker: one row is enough

    def active_burns(self) -> list[ProxyBurnRecord]:
        """Every burn not yet expired."""
        now = time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(proxy_burns)
                .where(sa.or_(proxy_burns.c.until.is_(None), proxy_burns.c.until > now))
                .order_by(proxy_burns.c.burned_at)
            )
            return to_records(ProxyBurnRecord, rows)

    def unburn(self, proxy: str, scope: str | None = None) -> int:
        """Lift burns of `proxy` (for one scope, or all); returns rows removed."""
        condition = proxy_burns.c.proxy == proxy
        if scope is not None:
            condition &= proxy_burns.c.scope == scope
        with self.engine.begin() as conn:
            return conn.execute(proxy_burns.delete().where(condition)).rowcount
