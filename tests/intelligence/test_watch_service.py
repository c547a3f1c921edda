"""Real bookings (DBOS jobs on the sandbox consulate) share one watch job: a found slot goes
to exactly one waiting booking, in priority order, and every scan is stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from portwright.adapters import default_registry
from portwright.apps.consulate.watch import PortalScanner
from portwright.intelligence import WatchKey, WatchService
from portwright.orchestrator import JobService
from portwright.resources import StaticSecrets
from portwright.sandbox import SandboxWorld, consulate, inbox
from portwright.settings import Settings
from portwright.testing import ManualClock, wait_until
from tests.support import reaching

START = 1_900_000_000.0


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    """Two LON/tourist slots open from the start, none released later, none taken by others."""
    options = {"initial_slots": 2, "release_every_s": 1e7, "take_mean_s": 1e9,
               "payment_delay_s": 0.2, "hold_ttl_s": 300.0}  # fmt: skip
    with SandboxWorld([*inbox.specs(), *consulate.specs(options)], seed=21) as started:
        yield started


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    return reaching(settings, world)


def _booking(world: SandboxWorld, n: int) -> dict[str, object]:
    return {
        "portal_url": world.url("consulate"), "inbox_url": world.url("inbox"),
        "account_email": f"user{n}@example.test", "center": "LON", "visa_type": "tourist",
        "otp_source": "inbox", "watch": True, "deadline_s": 600.0, "payment_wait_s": 1.0,
    }  # fmt: skip


async def test_one_watch_job_hands_each_slot_to_one_booking_by_priority(
    service_for: Callable[..., JobService], world: SandboxWorld
) -> None:
    """Three watching bookings (priorities 1, 5, 3), two open slots: one scan serves both
    slots to priorities 5 and 3, which book them; priority 1 keeps waiting; the scans are
    stored as observations."""
    secrets = StaticSecrets({f"user{n}@example.test": f"pw-{n}" for n in (1, 2, 3)})
    svc = service_for(default_registry(), secrets=secrets)
    tenant = svc.store.tenants.ensure("watchers")
    ids = {}
    for n, priority in ((1, 1), (2, 5), (3, 3)):
        job = await svc.submit(tenant_id=tenant.id, adapter="consulate",
                               input=_booking(world, n), priority=priority)  # fmt: skip
        ids[priority] = job.id
    await wait_until(
        lambda: len(svc.store.jobs.waiting_for_input("slot")) == 3, timeout=120, every=0.1
    )
    async with httpx.AsyncClient(follow_redirects=True) as client:
        scanner = PortalScanner(client, world.url("consulate"), "user9@example.test", "pw-9")
        watch = WatchService(svc, scanner, per_hour=30, clock=ManualClock(START))
        assert await watch.sync() == 3
        key = WatchKey("consulate", "LON", "tourist")
        assert watch.hub.waiting(key) == [ids[5], ids[3], ids[1]]
        assert await watch.hub.step()
        assert [job for job, _ in watch.handed_off] == [ids[5], ids[3]]
        slots = [slot for _, slot in watch.handed_off]
        assert len(set(slots)) == 2

        def booked() -> bool:
            return all(svc.store.jobs.get(ids[p]).state == "CONFIRMED" for p in (5, 3))

        await wait_until(booked, timeout=180, every=0.2)
        for priority, slot in zip((5, 3), slots, strict=True):
            assert (svc.store.jobs.get(ids[priority]).output or {})["slot_id"] == slot
        assert sorted(e.key for e in world.ledger("consulate").entries("booking")) == sorted(
            [ids[5], ids[3]]
        )
        assert await watch.sync() == 1  # only priority 1 still waits
        assert await watch.hub.step()  # the calendar is empty now: nothing to hand over
        assert len(watch.handed_off) == 2
        assert svc.store.jobs.get(ids[1]).waiting_for == "slot"
    runs = svc.store.intel.slots.history("consulate", "LON", "tourist")
    assert [(r.open, r.new) for r in runs] == [(2, 2), (0, 0)]
    assert scanner.requests == 4  # sign-in (2) and two scans for three bookings
    await svc.cancel(ids[1], actor="test")
