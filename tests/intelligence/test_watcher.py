"""Watch jobs on a manual clock: the budget holds, cooldowns hold, slots go out by priority."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portwright.intelligence import (
    PredictorConfig,
    ReleasePredictor,
    ScanResult,
    WatchHub,
    WatchKey,
)
from portwright.testing import ManualClock

HOUR = 3600.0
DAY = 86_400.0


@dataclass
class FakePortal:
    """Slots released at given times (hub clock), each open for `life_s`; 429 on chosen scans."""

    clock: ManualClock
    releases: dict[WatchKey, list[float]]
    life_s: float = 1800.0
    throttle: set[int] = field(default_factory=set)  # scan numbers answered 429
    retry_after: float = 600.0
    requests: list[tuple[float, WatchKey]] = field(default_factory=list)
    cooled: list[tuple[float, float]] = field(default_factory=list)  # (from, until)

    async def scan(self, key: WatchKey) -> ScanResult:
        now = self.clock.now()
        self.requests.append((now, key))
        if len(self.requests) in self.throttle:
            self.cooled.append((now, now + self.retry_after))
            return ScanResult(retry_after=self.retry_after)
        open_ids = tuple(
            f"{key.center}-{i}"
            for i, at in enumerate(self.releases.get(key, []))
            if at <= now < at + self.life_s
        )
        return ScanResult(slots=open_ids)


@dataclass
class Bookings:
    got: dict[str, str] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)

    async def hand_off(self, booking_id: str, key: WatchKey, slot: str) -> bool:
        if booking_id in self.refuse:
            return False
        assert booking_id not in self.got
        self.got[booking_id] = slot
        return True


def _run(hub: WatchHub, until: float) -> None:
    asyncio.run(hub.run(until=until))


@settings(max_examples=60, deadline=None)
@given(
    per_hour=st.integers(min_value=1, max_value=40),
    centers=st.integers(min_value=1, max_value=3),
    releases=st.lists(st.floats(min_value=0.0, max_value=2 * DAY), max_size=12),
    throttle=st.sets(st.integers(min_value=1, max_value=300), max_size=8),
    priorities=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=6),
)
def test_budget_and_cooldowns_hold_and_each_slot_reaches_one_booking(
    per_hour: int,
    centers: int,
    releases: list[float],
    throttle: set[int],
    priorities: list[int],
) -> None:
    """Whatever the releases, 429s and waiting bookings: no hour holds more than the portal's
    budget, no request falls inside a cooldown, and each slot reaches at most one booking."""
    clock = ManualClock()
    keys = [WatchKey("cns", f"C{i}", "tourist") for i in range(centers)]
    portal = FakePortal(clock, {k: sorted(releases) for k in keys}, throttle=throttle)
    bookings = Bookings()
    hub = WatchHub(scan=portal.scan, hand_off=bookings.hand_off, per_hour=per_hour, clock=clock)
    for i, priority in enumerate(priorities):
        hub.wait(keys[i % centers], f"b{i}", priority=priority)
    _run(hub, 2 * DAY)
    times = [t for t, _ in portal.requests]
    assert times == sorted(times)
    for i, t in enumerate(times):
        assert sum(1 for u in times[: i + 1] if u > t - HOUR) <= per_hour
    for start, end in portal.cooled:
        assert not [t for t in times if start < t < end]
    assert len(set(bookings.got.values())) == len(bookings.got)


def test_slots_go_to_waiting_bookings_in_priority_order() -> None:
    """Two slots, three bookings: the two highest priorities (first come among equals) get
    one each; a booking that refuses (gone) is skipped; the lowest keeps waiting."""
    clock = ManualClock()
    key = WatchKey("cns", "ACC", "tourist")
    portal = FakePortal(clock, {key: [100.0, 100.0]})
    bookings = Bookings(refuse={"gone"})
    hub = WatchHub(scan=portal.scan, hand_off=bookings.hand_off, per_hour=60, clock=clock)
    hub.wait(key, "low", priority=1)
    hub.wait(key, "gone", priority=9)
    hub.wait(key, "high-first", priority=5)
    hub.wait(key, "high-second", priority=5)
    assert hub.waiting(key) == ["gone", "high-first", "high-second", "low"]
    _run(hub, 2 * HOUR)
    assert bookings.got == {"high-first": "ACC-0", "high-second": "ACC-1"}
    assert hub.waiting(key) == ["low"]


def test_an_outside_cooldown_is_honoured() -> None:
    """While the store says the portal cools down, the watch job does not poll it."""
    clock = ManualClock()
    key = WatchKey("cns", "ACC", "tourist")
    portal = FakePortal(clock, {})
    hub = WatchHub(
        scan=portal.scan, hand_off=Bookings().hand_off, per_hour=60, clock=clock,
        cooldown_until=lambda name: 5000.0 if name == "cns" else None,
    )  # fmt: skip
    hub.wait(key, "b")
    _run(hub, 6000.0)
    assert portal.requests
    assert min(t for t, _ in portal.requests) >= 5000.0


def test_polls_densely_inside_predicted_windows_and_sparsely_outside() -> None:
    """With a predictor that learned a daily 09:00 window, the job polls at the budget's
    rate around 09:00 and several times more sparsely elsewhere."""
    predictor = ReleasePredictor(PredictorConfig())
    key = WatchKey("cns", "ACC", "tourist")
    t = 0.0
    while t < 14 * DAY:  # two weeks of scans every 5 min; a release daily at 09:00
        day_t = t % DAY
        predictor.observe(str(key), t, 1 if 9 * HOUR <= day_t < 9 * HOUR + 1200 else 0)
        t += 300
    start = 14 * DAY
    clock = ManualClock(start)
    portal = FakePortal(clock, {})
    hub = WatchHub(
        scan=portal.scan, hand_off=Bookings().hand_off, per_hour=60, clock=clock,
        predictor=predictor,
    )  # fmt: skip
    hub.wait(key, "b")
    _run(hub, start + DAY)
    assert hub.windows(key)
    times = [tt - start for tt, _ in portal.requests]
    inside = [x for x in times if 8.6 * HOUR <= x <= 9.15 * HOUR]  # the window 08:45-09:00
    outside = [x for x in times if 14 * HOUR <= x <= 20 * HOUR]  # padded by 10 minutes
    dense = 0.55 * HOUR / max(len(inside), 1)
    sparse = 6 * HOUR / max(len(outside), 1)
    assert dense <= 90.0  # about the budget's 60 s
    assert sparse >= 3 * dense


def _daily_window_predictor(key: WatchKey) -> ReleasePredictor:
    """Two weeks of scans every 5 min; a slot appears daily at 09:00 for 20 minutes."""
    predictor = ReleasePredictor(PredictorConfig())
    t = 0.0
    while t < 14 * DAY:
        day_t = t % DAY
        predictor.observe(str(key), t, 1 if 9 * HOUR <= day_t < 9 * HOUR + 1200 else 0)
        t += 300
    return predictor


def test_plans_with_the_whole_day_ahead_until_the_next_refresh() -> None:
    """The windows a job plans with (padded) cover a day ahead of every poll, although its
    forecast is refreshed only hourly (it used to reach a day and twice the padding past the
    refresh, so in today's window the planner missed tomorrow's and misjudged the day)."""
    key = WatchKey("cns", "ACC", "tourist")
    predictor = _daily_window_predictor(key)
    start = 14 * DAY + 7.75 * HOUR  # the first forecast is made at 07:45
    clock = ManualClock(start)
    missing: list[tuple[float, float]] = []

    async def scan(_key: WatchKey) -> ScanResult:
        now = clock.now()
        if not hub.windows(key):
            return ScanResult()  # the first scan: no forecast yet
        planned = {v.start for v in hub.windows(key)}
        ahead = predictor.forecast(str(key), now, 2 * DAY).windows
        missing.extend(
            (now, w.start) for w in ahead if w.start - 600 < now + DAY and w.start not in planned
        )
        return ScanResult()

    hub = WatchHub(
        scan=scan, hand_off=Bookings().hand_off, per_hour=60, clock=clock, predictor=predictor,
        pad_s=600.0,
    )  # fmt: skip
    hub.wait(key, "b")
    _run(hub, start + 2 * HOUR)
    assert len(hub.windows(key)) >= 2
    assert missing == []


def test_a_found_slot_is_offered_before_the_scan_is_recorded() -> None:
    """Competitors take slots within seconds: the hand-off comes first, then `on_scan`
    (a store write under `WatchService`), which still records every scan."""
    clock = ManualClock()
    key = WatchKey("cns", "ACC", "tourist")
    portal = FakePortal(clock, {key: [100.0]})
    events: list[str] = []

    async def hand_off(booking_id: str, _key: WatchKey, slot: str) -> bool:
        events.append(f"hand-off {slot}")
        return True

    async def on_scan(_key: WatchKey, at: float, result: ScanResult) -> None:
        events.append(f"record {len(result.slots)}")

    hub = WatchHub(scan=portal.scan, hand_off=hand_off, per_hour=60, clock=clock, on_scan=on_scan)
    hub.wait(key, "b")
    _run(hub, 300.0)
    assert "hand-off ACC-0" in events
    i = events.index("hand-off ACC-0")
    assert events[i + 1] == "record 1"
    assert len([e for e in events if e.startswith("record")]) == len(portal.requests)


def test_bad_watch_options_name_the_field() -> None:
    """A dense share outside (0, 1) or an exploring share outside [0, 1) is refused, naming it."""
    with pytest.raises(ValueError, match="dense_share"):
        WatchHub(scan=FakePortal(ManualClock(), {}).scan, hand_off=Bookings().hand_off,
                 per_hour=60, dense_share=1.0)  # fmt: skip
    with pytest.raises(ValueError, match="explore_share"):
        WatchHub(scan=FakePortal(ManualClock(), {}).scan, hand_off=Bookings().hand_off,
                 per_hour=60, explore_share=1.0)  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_finds_a_short_lived_window_from_its_own_scans(seed: int) -> None:
    """Slots that live a minute appear each weekday around 09:00. Three weeks of scans every
    5 min saw a few; no window is forecast from that. Within a week of its own scans the hub
    has looked at the likeliest span densely (a bounded share of its allowance) and sees the
    releases there, where polling at the same rate without looking sees one in five."""
    rng = random.Random(seed)
    releases = [d * DAY + 9 * HOUR + rng.uniform(-300, 300) for d in range(28) if d % 7 < 5]
    key = WatchKey("cns", "ACC", "tourist")

    def history() -> ReleasePredictor:
        predictor = ReleasePredictor(PredictorConfig())
        t = 0.0
        while t < 21 * DAY:
            predictor.observe(str(key), t, sum(1 for at in releases if at <= t < at + 60))
            t += 300
        return predictor

    assert history().forecast(str(key), 21 * DAY, 7 * DAY).windows == ()

    def week(**options: float) -> tuple[int, list[float]]:
        predictor = history()
        clock = ManualClock(21 * DAY)
        portal = FakePortal(clock, {key: releases}, life_s=60.0)
        hub = WatchHub(
            scan=portal.scan, hand_off=Bookings(refuse={"b"}).hand_off, per_hour=120,
            clock=clock, predictor=predictor, daily_share=0.1, **options,  # 288 a day
        )  # fmt: skip

        async def go() -> None:
            while clock.now() < 28 * DAY:
                hub.wait(key, "b")  # refuses every slot: keeps waiting
                await hub.step()

        asyncio.run(go())
        times = [tt for tt, _ in portal.requests]
        seen = sum(
            1 for at in releases if at >= 21 * DAY and any(at <= tt < at + 60 for tt in times)
        )
        return seen, times

    seen, times = week()
    assert seen >= 4  # of the week's 5
    assert len(times) <= 7 * 288 * 1.02  # the day's allowance, not more
    for i, tt in enumerate(times):
        assert sum(1 for u in times[: i + 1] if u > tt - HOUR) <= 120
    blind, _ = week(explore_share=0.0)
    assert blind < seen  # the same hub not looking (old behaviour) sees fewer


def test_a_sighting_is_followed_densely_so_a_bursts_later_slots_are_seen_at_once() -> None:
    """Uniform polls every 300 s (no forecast); a cancellation seen at a poll starts the
    follow-up: its burst's later slots, released after that poll, are seen within the dense
    interval (30 s: the hourly cap), not at the next sparse poll; the follow-up ends after
    `follow_s` and the hourly cap holds throughout."""
    clock = ManualClock()
    key = WatchKey("cns", "ACC", "tourist")
    burst = [350.0, 610.0, 650.0]  # the first is seen at the 600 s poll, the others after it
    portal = FakePortal(clock, {key: burst})
    hub = WatchHub(
        scan=portal.scan, hand_off=Bookings(refuse={"b"}).hand_off, per_hour=120, clock=clock,
        daily_share=288 / (120 * 24), follow_s=300.0,
    )  # fmt: skip

    async def watch() -> None:  # the booking refuses each slot and waits on (as in the backtest)
        while clock.now() < 3 * HOUR:
            hub.wait(key, "b")
            await hub.step()

    asyncio.run(watch())
    times = [t for t, _ in portal.requests]
    assert times[:3] == [0.0, 300.0, 600.0]
    seen = [next(t for t in times if t >= at) - at for at in burst]
    assert seen[0] == 250.0  # found by a sparse poll
    assert all(0 < d <= 30.0 for d in seen[1:]), seen  # followed: at the dense interval
    # followed every 30 s until follow_s after the last sighting (660 s), then sparse again
    assert times[2:15] == [600.0 + 30.0 * i for i in range(13)]
    assert times[15] - times[14] >= 290.0
    assert all(b - a >= 290.0 for a, b in itertools.pairwise(times[14:]))
    assert all(sum(1 for u in times if t <= u < t + HOUR) <= 120 for t in times)
