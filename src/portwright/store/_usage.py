"""Usage metering: per-tenant monthly counters (reserved atomically) and per-job records.

A record whose price depends on how the job goes (a scrape: the engine tier that
served the page) is written with tier `pending` and the reserved credits; once
its job has ended, `settle` re-prices it from the job's output (`tier`,
`credits`; a job that failed or was cancelled costs nothing) and moves the
counter by the difference, once. `summary` settles the tenant first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._bulk import insert_linked
from portwright.store._schema import jobs, usage_counters, usage_records
from portwright.store._scope import tenant_transaction

__all__ = ["PENDING_TIER", "UNSERVED_TIER", "UsageRepository", "UsageSummary", "UsageTotals"]

PENDING_TIER = "pending"  # priced when the job ends
UNSERVED_TIER = "unserved"  # the job ended without a page: no credits
_ENDED = ("succeeded", "failed", "cancelled")


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

    def record_many(
        self,
        conn: sa.Connection,
        *,
        tenant_id: str,
        period: str,
        kind: str,
        charges: Sequence[tuple[str, int]],
        tier: str | None = None,
        api_key_id: str | None = None,
    ) -> None:
        """One record per (job id, credits), in the caller's transaction: a batch's usage,
        written with its jobs in one prebuilt INSERT (`insert_linked`: on PostgreSQL the
        columns every record shares sent once)."""
        now = time.time()
        rows = [
            {
                "tenant_id": tenant_id,
                "api_key_id": api_key_id,
                "job_id": job_id,
                "kind": kind,
                "tier": tier,
                "credits": credits,
                "period": period,
                "created_at": now,
            }
            for job_id, credits in charges
        ]
        insert_linked(conn, [(usage_records, rows)])

    def settle(self, tenant_id: str) -> int:
        """Price the tenant's pending records whose jobs have ended; how many were settled."""
        query = (
            sa.select(
                usage_records.c.id,
                usage_records.c.period,
                usage_records.c.credits,
                jobs.c.status,
                jobs.c.output,
            )
            .join(jobs, jobs.c.id == usage_records.c.job_id)
            .where(
                usage_records.c.tenant_id == tenant_id,
                usage_records.c.tier == PENDING_TIER,
                jobs.c.status.in_(_ENDED),
            )
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return 0
        # Set-based: one UPDATE per distinct price (per 500 records), then one counter move
        # per period for the records this call actually settled (RETURNING: a concurrent
        # settle takes each record once).
        priced: dict[tuple[str, int], list[tuple[int, str, int]]] = {}
        for row in rows:
            output = row.output if isinstance(row.output, dict) else {}
            tier, credits = UNSERVED_TIER, 0
            if row.status == "succeeded":
                tier = str(output.get("tier") or output.get("engine") or "http")[:16]
                credits = int(output.get("credits", row.credits))
            priced.setdefault((tier, credits), []).append((row.id, row.period, row.credits))
        settled = 0
        moves: dict[str, int] = {}
        with self.engine.begin() as conn:
            for (tier, credits), group in priced.items():
                reserved = {record_id: (period, was) for record_id, period, was in group}
                ids = list(reserved)
                for at in range(0, len(ids), 500):
                    done = conn.execute(
                        usage_records.update()
                        .where(
                            usage_records.c.id.in_(ids[at : at + 500]),
                            usage_records.c.tier == PENDING_TIER,
                        )
                        .values(tier=tier, credits=credits)
                        .returning(usage_records.c.id)
                    ).all()
                    for (record_id,) in done:
                        period, was = reserved[record_id]
                        moves[period] = moves.get(period, 0) + (credits - was)
                    settled += len(done)
            for period, delta in moves.items():
                if delta:
                    conn.execute(
                        usage_counters.update()
                        .where(
                            usage_counters.c.tenant_id == tenant_id,
                            usage_counters.c.period == period,
                        )
                        .values(credits=usage_counters.c.credits + delta)
                    )
        return settled

    def summary(self, tenant_id: str, period: str) -> UsageSummary:
        self.settle(tenant_id)
        key = (usage_records.c.tenant_id == tenant_id) & (usage_records.c.period == period)
        count, total = sa.func.count(), sa.func.coalesce(sa.func.sum(usage_records.c.credits), 0)
        with tenant_transaction(self.engine, tenant_id) as conn:
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

    def unfinished_jobs(self, tenant_id: str, api_key_id: str) -> int:
        """How many jobs submitted with this API key have not ended yet (queued, running or
        waiting): what a plan's per-key concurrency cap counts."""
        query = (
            sa.select(sa.func.count())
            .select_from(jobs.join(usage_records, usage_records.c.job_id == jobs.c.id))
            .where(
                jobs.c.tenant_id == tenant_id,
                jobs.c.status.in_(("queued", "running", "waiting")),  # not ended
                usage_records.c.api_key_id == api_key_id,
            )
        )
        with tenant_transaction(self.engine, tenant_id) as conn:
            return int(conn.execute(query).scalar_one())
