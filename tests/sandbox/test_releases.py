"""The sandbox's release model: seeded, windowed, bursty, with holidays, and fast."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from portwright.sandbox.consulate.releases import (
    DAY_S,
    ReleaseFeed,
    ReleasePattern,
    generate_releases,
)

MONDAY = datetime(2030, 1, 7, tzinfo=UTC).timestamp()
WEEKS = 8


def _local(at: float, pattern: ReleasePattern) -> datetime:
    return datetime.fromtimestamp(at + pattern.utc_offset_s, UTC)


def test_same_seed_same_schedule_and_spans_compose() -> None:
    """A schedule depends on the seed only: split generation equals one pass; seeds differ."""
    p = ReleasePattern(utc_offset_s=-5 * 3600)
    end = MONDAY + WEEKS * 7 * DAY_S
    whole = generate_releases("NYC", "work", p, seed=3, start=MONDAY, end=end)
    mid = MONDAY + 17.3 * DAY_S
    split = generate_releases("NYC", "work", p, seed=3, start=MONDAY, end=mid) + (
        generate_releases("NYC", "work", p, seed=3, start=mid, end=end)
    )
    assert whole == split
    assert whole != generate_releases("NYC", "work", p, seed=4, start=MONDAY, end=end)
    assert whole != generate_releases("NYC", "study", p, seed=3, start=MONDAY, end=end)


def test_window_releases_fall_on_weekdays_around_the_local_hour() -> None:
    """Window releases happen only on the pattern's weekdays, within jitter + drift of the hour."""
    p = ReleasePattern(utc_offset_s=3600, hour=9.0, jitter_s=600, drift_s_per_week=60)
    rel = generate_releases(
        "ACC", "tourist", p, seed=1, start=MONDAY, end=MONDAY + WEEKS * 7 * DAY_S
    )
    window = [r for r in rel if r.kind == "window"]
    assert len(window) >= 5 * WEEKS * 0.85  # a few holidays at most
    for r in window:
        local = _local(r.at, p)
        assert local.weekday() < 5
        minutes = local.hour * 60 + local.minute - 9 * 60
        assert abs(minutes) <= 10 + WEEKS  # ±10 min jitter, 1 min drift a week
        assert r.slots == p.size
    assert [r.at for r in rel] == sorted(r.at for r in rel)


def test_cancellation_bursts_come_at_random_times_one_slot_each() -> None:
    """Bursts return single slots spread over the day, about bursts_per_day a day."""
    p = ReleasePattern(bursts_per_day=2.0, burst_max=3)
    rel = generate_releases("ACC", "tourist", p, seed=2, start=MONDAY, end=MONDAY + 28 * DAY_S)
    cancels = [r for r in rel if r.kind == "cancellation"]
    assert all(r.slots == 1 for r in cancels)
    assert 28 * 2 <= len(cancels) <= 28 * 2 * 3  # 2 bursts a day of 1..3 slots, on average
    hours = {_local(r.at, p).hour for r in cancels}
    assert len(hours) >= 16


def test_holidays_have_no_window_release() -> None:
    """A listed holiday has no window release; the other weekdays of that week do."""
    holiday = date(2030, 1, 9)
    p = ReleasePattern(holidays=frozenset({holiday}), holiday_chance=0.0, bursts_per_day=0.0)
    rel = generate_releases("ACC", "tourist", p, seed=5, start=MONDAY, end=MONDAY + 7 * DAY_S)
    days = [_local(r.at, p).date() for r in rel]
    assert holiday not in days
    assert len(days) == 4


def test_feed_replays_against_a_simulated_clock() -> None:
    """Stepping a simulated clock through the feed yields each release once, in order."""
    p = ReleasePattern()
    end = MONDAY + 21 * DAY_S
    feed = ReleaseFeed("ACC", "tourist", p, seed=9, start=MONDAY)
    seen = []
    now = MONDAY
    while now < end:
        now += 4321.0
        seen += [r for r in feed.due(min(now, end)) if r.at < end]
    assert seen == generate_releases("ACC", "tourist", p, seed=9, start=MONDAY, end=end)


@pytest.mark.parametrize(
    ("field", "value"),
    [("hour", 24.0), ("weekdays", frozenset({7})), ("size", 0), ("holiday_chance", 1.5)],
)
def test_bad_pattern_names_the_field(field: str, value: object) -> None:
    """A bad pattern is refused with a message naming the field."""
    with pytest.raises(ValueError, match=field):
        ReleasePattern(**{field: value})  # type: ignore[arg-type]
