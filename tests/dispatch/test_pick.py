"""The batch's least-loaded pick (a heap of loads) agrees with a scan of every driver: the
least loaded, ties by id, never the excluded one, after any sequence of load changes."""

from __future__ import annotations

import random

from portwright.apps.dispatch._service import _Tenant


def _scan(drivers: list[str], loads: dict[str, int], exclude: str | None) -> str | None:
    candidates = [d for d in drivers if d != exclude]
    return min(candidates, key=lambda d: (loads.get(d, 0), d)) if candidates else None


def test_the_heap_pick_matches_a_scan_through_assignments_and_releases() -> None:
    rng = random.Random(21)
    drivers = [f"d{n:03}" for n in range(60)]
    loads = {d: rng.randrange(4) for d in drivers if rng.random() < 0.7}
    loads["gone"] = 3  # a driver no longer available still has orders
    state = _Tenant(drivers, loads)
    for _ in range(2000):
        exclude = rng.choice([None, None, *drivers[:5], "gone"])
        picked = state.pick(exclude)
        assert picked == _scan(drivers, loads, exclude)
        if rng.random() < 0.6 and picked is not None:  # assigned: one more for the driver
            loads[picked] = loads.get(picked, 0) + 1
            state.moved(picked)
        else:  # an order ends or moves away: one fewer for someone
            someone = rng.choice([*drivers, "gone"])
            if loads.get(someone, 0) > 0:
                loads[someone] -= 1
                state.moved(someone)


def test_no_driver_but_the_excluded_one_means_none() -> None:
    assert _Tenant(["d1"], {}).pick("d1") is None
    assert _Tenant([], {}).pick(None) is None
    state = _Tenant(["d1", "d2"], {"d1": 2})
    assert state.pick(None) == "d2"
    assert state.pick("d2") == "d1"
    assert state.pick(None) == "d2"  # the excluded entry went back on the heap
