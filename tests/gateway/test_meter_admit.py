"""`Meter.admit`, a batch's quota check (`POST /v1/batch`): the key's concurrency cap and the
month's allowance, with the tenant's ended jobs settled before the allowance is taken, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from portwright._ids import new_ids
from portwright.gateway import PLANS
from portwright.gateway._errors import ApiError
from portwright.gateway._plans import PENDING_TIER, Meter, current_period
from portwright.store import NewJob, Store

STARTER = PLANS["starter"]  # 1,000 jobs and 1,000 credits a month, 200 unfinished per key


def _accept(store: Store, tenant_id: str, count: int, *, status: str, credits: int) -> None:
    """`count` jobs in `status`, each with a pending usage record of key k1 and its
    credits reserved in this month's counters."""
    new = [
        NewJob(
            job_id=job_id,
            tenant_id=tenant_id,
            adapter="scrape",
            adapter_version="1.0.0",
            portal="web",
            state=status.upper(),
            status=status,
            input={"url": f"http://example.test/{n}"},
            lock_key=None,
            priority=0,
            actor="key:k1",
        )
        for n, job_id in enumerate(new_ids("job", count))
    ]
    period = current_period()
    assert store.usage.reserve(
        tenant_id, period, jobs=count, credits=count * credits, max_jobs=10**6, max_credits=10**6
    )
    with store.engine.begin() as conn:
        records, _ = store.jobs.insert_many(conn, new)
        store.usage.record_many(
            conn,
            tenant_id=tenant_id,
            period=period,
            kind="scrape",
            tier=PENDING_TIER,
            api_key_id="k1",
            charges=[(r.id, credits) for r in records],
        )


def test_admit_settles_ended_jobs_before_it_takes_the_allowance(db_url: str) -> None:
    """An ended job that was never served had reserved the whole month's credits: admit
    prices it first (nothing to pay), so a job of 1 credit fits."""
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme", plan="starter")
        _accept(store, tenant.id, 1, status="failed", credits=STARTER.credits_per_month)
        period = asyncio.run(Meter(store).admit(tenant.id, "k1", STARTER, jobs=1, credits=1))
        assert period == current_period()
        summary = store.usage.summary(tenant.id, period)
        assert (summary.jobs, summary.credits) == (2, 1)
    finally:
        store.close()


def test_admit_refuses_past_the_keys_cap_and_reserves_nothing(db_url: str) -> None:
    """The key's unfinished jobs at its plan's cap: one more is a 429 naming the cap, and
    the month's counters stay as they were."""
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme", plan="starter")
        _accept(store, tenant.id, STARTER.concurrent_jobs_per_key, status="queued", credits=1)
        before = store.usage.summary(tenant.id, current_period())
        with pytest.raises(ApiError) as refused:
            asyncio.run(Meter(store).admit(tenant.id, "k1", STARTER, jobs=1, credits=1))
        assert refused.value.status == 429
        assert refused.value.body.code == "concurrency_limit"
        assert "cap of 200 unfinished jobs" in refused.value.body.message
        after = store.usage.summary(tenant.id, current_period())
        assert (after.jobs, after.credits) == (before.jobs, before.credits)
        # another key of the tenant is not capped by k1's jobs
        asyncio.run(Meter(store).admit(tenant.id, "k2", STARTER, jobs=1, credits=1))
    finally:
        store.close()
