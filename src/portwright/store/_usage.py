"""Usage metering: per-tenant monthly counters (reserved atomically) and per-job records."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._schema import usage_counters, usage_records

__all__ = ["UsageRepository", "UsageSummary", "UsageTotals"]


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int
    credits: int


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """A tenant's usage in one period: counters, and detail by engine tier and by API key."""

    period: str
    jobs: int
    credits: int
    by_tier: dict[str, UsageTotals]
    by_key: dict[str, UsageTotals]


class UsageRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def reserve(
        self,
        tenant_id: str,
        period: str,
        *,
        jobs: int,
        credits: int,
        max_jobs: int,
        max_credits: int,
    ) -> bool:
        """Add to the period's counters unless that would pass a limit (one atomic UPDATE)."""
        key = (usage_counters.c.tenant_id == tenant_id) & (usage_counters.c.period == period)
        with self.engine.connect() as conn:
            exists = conn.execute(sa.select(usage_counters.c.jobs).where(key)).first()
        if exists is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(usage_counters.insert().values(tenant_id=tenant_id, period=period))
            except sa.exc.IntegrityError:
                pass  # created concurrently
        with self.engine.begin() as conn:
            result = conn.execute(
                usage_counters.update()
                .where(
                    key,
                    usage_counters.c.jobs + jobs <= max_jobs,
                    usage_counters.c.credits + credits <= max_credits,
                )
                .values(
                    jobs=usage_counters.c.jobs + jobs, credits=usage_counters.c.credits + credits
                )
            )
        return result.rowcount == 1

    def refund(self, tenant_id: str, period: str, *, jobs: int, credits: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                usage_counters.update()
                .where(usage_counters.c.tenant_id == tenant_id, usage_counters.c.period == period)
                .values(
                    jobs=usage_counters.c.jobs - jobs, credits=usage_counters.c.credits - credits
                )
            )

    def record(
        self,
        *,
        tenant_id: str,
        period: str,
        kind: str,
        credits: int,
        tier: str | None = None,
        api_key_id: str | None = None,
        job_id: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                usage_records.insert().values(
                    tenant_id=tenant_id,
                    api_key_id=api_key_id,
                    job_id=job_id,
                    kind=kind,
                    tier=tier,
                    credits=credits,
                    period=period,
                    created_at=time.time(),
                )
            )

    def summary(self, tenant_id: str, period: str) -> UsageSummary:
        key = (usage_records.c.tenant_id == tenant_id) & (usage_records.c.period == period)
        count, total = sa.func.count(), sa.func.coalesce(sa.func.sum(usage_records.c.credits), 0)
        with self.engine.connect() as conn:
            counter = conn.execute(
                sa.select(usage_counters.c.jobs, usage_counters.c.credits).where(
                    usage_counters.c.tenant_id == tenant_id, usage_counters.c.period == period
                )
            ).first()
            tiers = conn.execute(
                sa.select(usage_records.c.tier, count, total)
                .where(key, usage_records.c.tier.is_not(None))
                .group_by(usage_records.c.tier)
            ).all()
            keys = conn.execute(
                sa.select(usage_records.c.api_key_id, count, total)
                .where(key, usage_records.c.api_key_id.is_not(None))
                .group_by(usage_records.c.api_key_id)
            ).all()
        return UsageSummary(
            period=period,
            jobs=int(counter.jobs) if counter else 0,
            credits=int(counter.credits) if counter else 0,
            by_tier={str(t): UsageTotals(int(n), int(c)) for t, n, c in tiers},
            by_key={str(k): UsageTotals(int(n), int(c)) for k, n, c in keys},
        )
