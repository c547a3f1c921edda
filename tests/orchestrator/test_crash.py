"""Durability under crashes: workers SIGKILLed mid-flight, and workers that never come back.

Jobs run in real worker subprocesses against the sandbox consulate; the test
process only submits and observes. Side effects are counted on the portal's
own ledger.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portwright.adapters import default_registry
from portwright.orchestrator import JobService
from portwright.sandbox import ChaosKnobs, SandboxWorld, captcha, consulate, inbox
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.support import Worker, reaching

SETTLED = ("succeeded", "failed", "cancelled")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    knobs = ChaosKnobs(latency_ms=(20, 120), rate_5xx=0.05, captcha_rate=0.2)
    options = {"release_every_s": 4.0, "initial_slots": 8, "take_mean_s": 120.0,
               "hold_ttl_s": 90.0, "payment_delay_s": 0.3}  # fmt: skip
    specs = [*inbox.specs(), *captcha.specs(), *consulate.specs(options, knobs)]
    with SandboxWorld(specs, seed=11) as w:
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)


def _booking(world: SandboxWorld, i: int) -> dict[str, Any]:
    pairs = [(c, v) for c in ("LON", "MAN", "EDI") for v in ("tourist", "work", "study")]
    center, visa = pairs[i % len(pairs)]
    return {
        "portal_url": world.url("consulate"), "inbox_url": world.url("inbox"),
        "account_email": f"user{i + 1}@example.test", "center": center, "visa_type": visa,
        "otp_source": "inbox", "scan_interval_s": 0.5, "deadline_s": 300.0, "payment_wait_s": 1.0,
    }  # fmt: skip


async def _submit(svc: JobService, world: SandboxWorld, count: int) -> list[str]:
    tenant = svc.store.tenants.ensure("acme")
    ids = []
    for i in range(count):
        job = await svc.submit(tenant_id=tenant.id, adapter="consulate", input=_booking(world, i))
        ids.append(job.id)
    return ids


def _assert_exactly_once(svc: JobService, world: SandboxWorld, ids: list[str]) -> None:
    jobs = [svc.store.jobs.get(i) for i in ids]
    failed = [(j.id, j.state, j.reason) for j in jobs if j.state != "CONFIRMED"]
    assert not failed, f"every booking should be confirmed: {failed}"
    ledger = world.ledger("consulate")
    assert ledger.duplicates("booking") == {}, "a request was booked twice"
    assert sorted(e.key for e in ledger.entries("booking")) == sorted(ids)
    for job in jobs:
        replay = svc.replay(job.id)
        assert replay.matches, f"{job.id} does not replay to its stored state: {replay}"


async def test_sigkill_at_random_points_loses_nothing_and_books_nothing_twice(
    service_for: Callable[..., JobService], settings: Settings, world: SandboxWorld, tmp_path: Path
) -> None:
    """20 bookings survive a worker SIGKILLed at random moments and restarted each time."""
    svc = service_for(default_registry(), run_workers=False)
    ids = await _submit(svc, world, 20)
    worker = Worker(settings, world, "crash-w1", tmp_path / "worker.log")
    worker.start()
    rng = random.Random(20261123)
    kills = 0
    try:
        for _ in range(8):
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            done = sum(1 for i in ids if svc.store.jobs.get(i).status in SETTLED)
            if done == len(ids):
                break
            worker.kill()
            kills += 1
            worker.start()
        await wait_until(
            lambda: all(svc.store.jobs.get(i).status in SETTLED for i in ids),
            timeout=600,  # generous: a loaded 2-core CI machine, not a hang
            every=0.5,
        )
    finally:
        worker.stop()
    assert kills >= 3, "the worker should have been killed mid-run several times"
    _assert_exactly_once(svc, world, ids)


async def test_a_live_worker_takes_over_the_jobs_of_one_that_never_returns(
    service_for: Callable[..., JobService], settings: Settings, world: SandboxWorld, tmp_path: Path
) -> None:
    """When a worker dies for good, another claims it (once) and finishes its jobs."""
    svc = service_for(default_registry(), run_workers=False)
    ids = await _submit(svc, world, 6)
    first = Worker(settings, world, "worker-a", tmp_path / "a.log")
    first.start()
    second = Worker(settings, world, "worker-b", tmp_path / "b.log")
    try:
        await wait_until(
            lambda: sum(1 for i in ids if svc.store.jobs.get(i).status == "running") >= 3,
            timeout=60, every=0.1,
        )  # fmt: skip
        first.kill()
        second.start()
        await wait_until(
            lambda: all(svc.store.jobs.get(i).status in SETTLED for i in ids),
            timeout=180,
            every=0.5,
        )
    finally:
        first.stop()
        second.stop()
    workers = {w.id: w for w in svc.store.workers.all()}
    assert workers["worker-a"].status == "dead"
    assert workers["worker-a"].taken_over_by == "worker-b"
    assert workers["worker-a"].recovered >= 1
    _assert_exactly_once(svc, world, ids)
