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


def test_a_batch_that_reads_only_the_least_loaded_picks_as_a_scan_of_all_would() -> None:
    """The batch state over the K least loaded drivers (not all N) picks what a scan of
    every available driver picks, through picks beyond its budget (it reloads all), orders
    ending for drivers it never read (looked up, joining the heap if available) and for
    drivers off duty (never picked)."""
    for seed in range(40):
        rng = random.Random(seed)
        everyone = [f"d{n:03}" for n in range(rng.randrange(5, 60))]
        available = sorted(d for d in everyone if rng.random() < 0.8)
        stored = {d: rng.randrange(5) for d in everyone}  # the database, as the batch began
        loads = dict(stored)  # the truth as the batch goes on
        k = rng.randrange(2, 12)
        top = sorted(available, key=lambda d: (stored[d], d))[:k]
        lookups: list[str] = []

        def lookup(d: str) -> tuple[bool, int]:
            lookups.append(d)  # noqa: B023 - called within this iteration
            return d in available, stored[d]  # noqa: B023 - called within this iteration

        def reload() -> tuple[list[str], dict[str, int]]:
            return list(available), dict(stored)  # noqa: B023

        state = _Tenant(top, {d: stored[d] for d in top}, complete=len(available) <= k,
                        lookup=lookup, reload=reload)  # fmt: skip
        for _ in range(rng.randrange(1, 60)):
            if rng.random() < 0.6:
                exclude = rng.choice([None, None, *available[:3]]) if available else None
                picked = state.pick(exclude)
                assert picked == _scan(available, loads, exclude), seed
                if picked is not None:
                    loads[picked] += 1
                    state.shift(picked, +1)
            else:
                holding = [d for d in everyone if loads[d] > 0]
                if holding:
                    someone = rng.choice(holding)
                    loads[someone] -= 1
                    state.shift(someone, -1)
        assert len(lookups) == len(set(lookups))  # each driver looked up once at most
