"""The consulate adapter's scan step records what it saw with the portal's clock, and the
store keeps it as runs (both databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portwright.apps.consulate import ConsulateAdapter
from portwright.apps.consulate import _steps as steps
from portwright.sandbox import SandboxWorld, consulate
from portwright.sandbox.consulate._calendar import SIM_START
from portwright.store import Store
from portwright.testing import FakeStepContext

MODEL = {"sim_start": SIM_START + 9 * 3600 - 600, "speed": 1.0, "seed": 3,
         "pattern": {"hour": 9.0, "jitter_s": 0.0, "bursts_per_day": 0.0,
                     "holiday_chance": 0.0, "drift_s_per_week": 0.0}}  # fmt: skip


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld(consulate.specs({"release_model": MODEL}), seed=4) as started:
        yield started


async def test_scans_are_observations_in_portal_time(world: SandboxWorld, db_url: str) -> None:
    """A scan before the simulated 09:00 release sees nothing open; the observation carries
    the portal's time and is stored as a "nothing open" run."""
    base = world.url("consulate")
    secrets = {"user1@example.test": "pw-1"}
    async with FakeStepContext(selectors=ConsulateAdapter.selectors, secrets=secrets) as sc:
        assert await steps.login(sc, base, "user1@example.test", "user1@example.test") == "ok"
        seen = await steps.scan(sc, base, "LON", "tourist")
    assert seen == {"slots": [], "logged_out": False}
    [(kind, subject, value)] = sc.record.observations
    assert (kind, subject) == ("slots", "LON/tourist")
    assert value["open"] == 0
    assert SIM_START + 9 * 3600 - 600 <= value["at"] < SIM_START + 9 * 3600  # before the release
    store = Store.open(db_url)
    try:
        store.intel.observe(portal="consulate", kind=kind, subject=subject, value=value)
        [run] = store.intel.slots.history("consulate", "LON", "tourist")
        assert (run.open, run.first_at) == (0, value["at"])
    finally:
        store.close()
