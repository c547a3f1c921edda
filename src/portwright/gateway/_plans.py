"""Plans, quotas and credits: what a tenant may use per month, and what each engine tier costs.

| plan       | jobs / month | credits / month | batch size | open / key |
|------------|--------------|-----------------|------------|------------|
| starter    | 1,000        | 1,000           | 100        | 200        |
| growth     | 10,000       | 10,000          | 500        | 1,000      |
| business   | 100,000      | 100,000         | 1,000      | 5,000      |
| enterprise | 1,000,000    | 1,000,000       | 1,000      | 20,000     |

Apps add per-job limits of their own (entry-point group `portwright.plan_limits`, a
`PlanLimit` each): the directories app caps the directories a job names per plan. A job
over one is refused with 402 `plan_limit` before any quota is taken.

Per-key concurrency ("open / key"): the jobs one API key has submitted that have not ended (queued,
running or waiting) may not exceed the plan's cap. It is checked at submission: a request
that would pass it is refused with 429 `concurrency_limit`, naming the cap, before any
quota is taken (nothing is queued for later). Each cap holds at least one full batch.

Credits per scrape by the engine tier that served the page (the ladder's rungs):
http 1, http-tls 2, browser 5, stealth 10. A scrape reserves the requested
tier's price ("auto" and "http" as http) and is recorded as `pending`; when
its job ends the store prices it at the tier that worked (a failed scrape
costs nothing), and the counters move by the difference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from portwright.engines.ladder import DEFAULT_RUNGS
from portwright.gateway._errors import ApiError
from portwright.plugins import PLAN_LIMITS, PluginError, load_plugins
from portwright.store import Store

__all__ = [
    "PENDING_TIER",
    "PLANS",
    "TIER_CREDITS",
    "Meter",
    "Plan",
    "PlanLimit",
    "current_period",
    "installed_plan_limits",
    "plan_of",
    "tier_of",
]


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    jobs_per_month: int
    credits_per_month: int
    batch_size: int
    concurrent_jobs_per_key: int


PLANS: Mapping[str, Plan] = {
    p.name: p
    for p in (
        Plan("starter", 1_000, 1_000, 100, 200),
        Plan("growth", 10_000, 10_000, 500, 1_000),
        Plan("business", 100_000, 100_000, 1_000, 5_000),
        Plan("enterprise", 1_000_000, 1_000_000, 1_000, 20_000),
    )
}

TIER_CREDITS: Mapping[str, int] = {rung.name: rung.credits for rung in DEFAULT_RUNGS}
"""A page's price by the ladder rung that served it (the ladder's own prices, one source)."""
PENDING_TIER = "pending"  # the tier of a usage record the store prices when its job ends


@dataclass(frozen=True)
class PlanLimit:
    """A per-job quota an app adds to the plans (entry-point group `portwright.plan_limits`).

    `measure(job_input)` is how much of it a job asks for (None: the job does not use
    it); `per_plan` the most each plan allows (a plan not named has no such limit);
    `field` is where the request says it, and `unit` what is counted, for the 402."""

    field: str
    unit: str
    per_plan: Mapping[str, int]
    measure: Callable[[Mapping[str, Any]], int | None]


def installed_plan_limits() -> list[PlanLimit]:
    """The installed apps' plan limits, by entry-point name."""
    limits: list[PlanLimit] = []
    for name, limit in load_plugins(PLAN_LIMITS).items():
        if not isinstance(limit, PlanLimit):
            raise PluginError(
                f"plugin {name!r} in entry-point group {PLAN_LIMITS!r} is a "
                f"{type(limit).__name__}, not a portwright.gateway.PlanLimit"
            )
        limits.append(limit)
    return limits


def plan_of(name: str) -> Plan:
    """The named plan; an unknown name (a plan retired since) falls back to starter."""
    return PLANS.get(name, PLANS["starter"])


def tier_of(engine: str) -> str:
    return "http" if engine == "auto" else engine


def current_period(now: float | None = None) -> str:
    return time.strftime("%Y-%m", time.gmtime(now if now is not None else time.time()))


class Meter:
    """Reserves quota before a job is accepted and records what it was charged."""

    def __init__(self, store: Store, limits: Sequence[PlanLimit] | None = None) -> None:
        self.store = store
        self.limits = list(installed_plan_limits() if limits is None else limits)

    def check_job_shape(self, plan: Plan, job_input: Mapping[str, Any]) -> None:
        """402 when a job asks for more of an app's per-job limit than the plan allows."""
        for limit in self.limits:
            allowed = limit.per_plan.get(plan.name)
            asked = limit.measure(job_input)
            if allowed is not None and asked is not None and asked > allowed:
                raise ApiError(
                    402,
                    "plan_limit",
                    f"{limit.field}: {asked} {limit.unit} exceed the {plan.name} plan's "
                    f"{allowed} per job",
                )

    async def admit(
        self, tenant_id: str, api_key_id: str, plan: Plan, *, jobs: int, credits: int
    ) -> str:
        """`check_concurrency`, then `reserve` (its period), the concurrency count and
        `reserve`'s settling of ended jobs read at once: two threads, two connections. Each
        walks the tenant's jobs still in flight (their usage records joined with their
        rows), so a batch sent in parts waited for both one after the other: on PostgreSQL
        ~10-60 ms each once a few thousand items were in flight."""
        unfinished, settled = await asyncio.gather(
            asyncio.to_thread(self.store.usage.unfinished_jobs, tenant_id, api_key_id),
            asyncio.to_thread(self.store.usage.settle, tenant_id),
            return_exceptions=True,  # both ended before anything is raised
        )
        if isinstance(unfinished, BaseException):
            raise unfinished
        if isinstance(settled, BaseException):
            raise settled
        self._cap(plan, unfinished, jobs)
        return await self._take(tenant_id, plan, jobs=jobs, credits=credits)

    async def check_concurrency(
        self, tenant_id: str, api_key_id: str, plan: Plan, *, jobs: int
    ) -> None:
        """429 when `jobs` more would take this key past its plan's cap of unfinished jobs."""
        unfinished = await asyncio.to_thread(
            self.store.usage.unfinished_jobs, tenant_id, api_key_id
        )
        self._cap(plan, unfinished, jobs)

    @staticmethod
    def _cap(plan: Plan, unfinished: int, jobs: int) -> None:
        cap = plan.concurrent_jobs_per_key
        if unfinished + jobs > cap:
            raise ApiError(
                429,
                "concurrency_limit",
                f"the {plan.name} plan's cap of {cap} unfinished jobs per API key would be "
                f"exceeded: this key has {unfinished} unfinished and the request adds {jobs}; "
                "submit again once some have ended",
                headers={"retry-after": "5"},
            )

    async def reserve(self, tenant_id: str, plan: Plan, *, jobs: int, credits: int) -> str:
        """Take `jobs` and `credits` from this month's allowance, or raise 402."""
        await asyncio.to_thread(self.store.usage.settle, tenant_id)  # finished jobs' true price
        return await self._take(tenant_id, plan, jobs=jobs, credits=credits)

    async def _take(self, tenant_id: str, plan: Plan, *, jobs: int, credits: int) -> str:
        """`reserve` once the tenant's ended jobs are settled."""
        period = current_period()
        ok = await asyncio.to_thread(
            self.store.usage.reserve,
            tenant_id,
            period,
            jobs=jobs,
            credits=credits,
            max_jobs=plan.jobs_per_month,
            max_credits=plan.credits_per_month,
        )
        if not ok:
            summary = await asyncio.to_thread(self.store.usage.summary, tenant_id, period)
            if summary.jobs + jobs > plan.jobs_per_month:
                what = f"jobs: {summary.jobs} of {plan.jobs_per_month} used this month"
            else:
                what = f"credits: {summary.credits} of {plan.credits_per_month} used this month"
            raise ApiError(
                402, "quota_exceeded", f"the {plan.name} plan's quota is exhausted ({what})"
            )
        return period

    async def refund(self, tenant_id: str, period: str, *, jobs: int, credits: int) -> None:
        await asyncio.to_thread(
            self.store.usage.refund, tenant_id, period, jobs=jobs, credits=credits
        )

    async def record(
        self,
        *,
        tenant_id: str,
        period: str,
        kind: str,
        credits: int,
        tier: str | None,
        api_key_id: str,
        job_id: str,
    ) -> None:
        await asyncio.to_thread(
            self.store.usage.record,
            tenant_id=tenant_id,
            period=period,
            kind=kind,
            credits=credits,
            tier=tier,
            api_key_id=api_key_id,
            job_id=job_id,
        )
