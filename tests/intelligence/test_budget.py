"""The request budget is never exceeded; the planner polls densely only in windows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portwright.intelligence import PollPlanner, RequestBudget, Window

DAY = 86_400.0


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=50),
    window_s=st.sampled_from([60.0, 600.0, 3600.0]),
    gaps=st.lists(st.floats(min_value=0.0, max_value=400.0), min_size=1, max_size=400),
)
def test_budget_never_exceeded_in_any_window(
    limit: int, window_s: float, gaps: list[float]
) -> None:
    """However requests arrive, no window_s-long window holds more than `limit` grants."""
    budget = RequestBudget(limit, window_s)
    granted: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        if budget.try_acquire(now):
            granted.append(now)
    for i, t in enumerate(granted):
        in_window = [g for g in granted[i:] if g < t + window_s]
        assert len(in_window) <= limit


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0.0, max_value=900.0), min_size=1, max_size=100),
)
def test_next_allowed_is_granted_and_nothing_earlier(limit: int, gaps: list[float]) -> None:
    """A request at next_allowed() is granted; one just before it is not."""
    budget = RequestBudget(limit, 3600.0)
    now = 0.0
    for gap in gaps:
        now += gap
        at = budget.next_allowed(now)
        if at > now:
            assert not budget.try_acquire(now)
            assert budget.next_allowed((now + at) / 2) == at
        assert budget.try_acquire(at)
        now = at


def test_time_going_back_is_refused() -> None:
    """An earlier time than the last grant is a caller bug, named as such."""
    budget = RequestBudget(2)
    assert budget.try_acquire(100.0)
    with pytest.raises(ValueError, match="time went back"):
        budget.try_acquire(50.0)
    with pytest.raises(ValueError, match="limit"):
        RequestBudget(0)


def test_planner_is_dense_in_windows_sparse_outside_and_spends_the_day() -> None:
    """Inside a padded window polls come at the dense interval; a day spends about per_day."""
    planner = PollPlanner(per_day=288, per_hour=120, pad_s=300)
    window = Window(start=9 * 3600.0, end=10 * 3600.0, confidence=0.99, chance=0.9)
    dense, sparse = planner.intervals([window], 0.0)
    assert dense == 30.0
    assert sparse > 300.0
    assert planner.next_poll([window], 9.5 * 3600) == 9.5 * 3600 + dense
    assert planner.next_poll([window], 8 * 3600) == 8 * 3600 + sparse
    assert planner.next_poll([window], 9 * 3600 - 400) == 9 * 3600 - 300  # wake at the window
    daily = [
        Window(9 * 3600.0 + d * DAY, 10 * 3600.0 + d * DAY, confidence=0.99, chance=0.9)
        for d in range(3)
    ]
    t, polls = 0.0, 0
    while t < DAY:
        t = planner.next_poll(daily, t)
        polls += 1
    assert 250 <= polls <= 300


def test_planner_without_windows_polls_uniformly() -> None:
    """The fallback forecast (no window) gives the fixed interval of the daily allowance;
    a sighting is followed at the hourly cap's interval all the same."""
    planner = PollPlanner(per_day=288, per_hour=120)
    assert planner.intervals([], 0.0) == (30.0, 300.0)
    assert planner.next_poll([], 1000.0) == 1300.0
    assert planner.next_poll([], 1000.0, follow_until=1200.0) == 1030.0
    assert planner.next_poll([], 1200.0, follow_until=1200.0) == 1500.0
    assert PollPlanner(per_day=12, per_hour=1).intervals([], 0.0) == (3600.0, 7200.0)


def test_planner_follows_a_burst_densely_then_returns_to_sparse() -> None:
    """After new slots are seen the planner polls densely until follow_until, then sparsely."""
    planner = PollPlanner(per_day=288, per_hour=120)
    window = Window(start=9 * 3600.0, end=10 * 3600.0, confidence=0.99, chance=0.9)
    dense, sparse = planner.intervals([window], 3 * 3600.0)
    assert planner.next_poll([window], 3 * 3600.0, follow_until=3 * 3600.0 + 300) == (
        3 * 3600.0 + dense
    )
    assert planner.next_poll([window], 3 * 3600.0 + 300, follow_until=3 * 3600.0 + 300) == (
        3 * 3600.0 + 300 + sparse
    )
