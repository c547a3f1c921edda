"""The release predictor on generated histories: finds planted windows, stays humble on noise."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from portwright.intelligence import PredictorConfig, ReleasePredictor
from portwright.sandbox.consulate.releases import DAY_S, ReleasePattern, generate_releases

MONDAY = datetime(2030, 1, 7, tzinfo=UTC).timestamp()
OFFSET = 2 * 3600


def _scan(pred: ReleasePredictor, key: str, releases: list[float], start: float, days: int) -> None:
    """Scan every 5 minutes; each release leaves one slot open for 20 minutes."""
    t = start
    while t < start + days * DAY_S:
        open_now = sum(1 for at in releases if at <= t < at + 1200)
        pred.observe(key, t, open_now)
        t += 300


def _history(seed: int, days: int, **kw: object) -> list[float]:
    pattern = ReleasePattern(utc_offset_s=OFFSET, **kw)  # type: ignore[arg-type]
    end = MONDAY + days * DAY_S
    return [r.at for r in generate_releases("C", "V", pattern, seed=seed, start=MONDAY, end=end)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_finds_a_planted_window(seed: int) -> None:
    """Four weeks of scans of a weekday 10:30 pattern predict 10:30 windows on weekdays only."""
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    releases = _history(seed, 28, hour=10.5, jitter_s=600, bursts_per_day=1.0)
    _scan(pred, "k", releases, MONDAY, 28)
    forecast = pred.forecast("k", MONDAY + 28 * DAY_S)
    assert not forecast.fallback
    assert 4 <= len(forecast.windows) <= 5  # the five weekdays (a Friday may lack evidence)
    for w in forecast.windows:
        start = datetime.fromtimestamp(w.start + OFFSET, UTC)
        end = datetime.fromtimestamp(w.end + OFFSET, UTC)
        assert start.weekday() < 5
        assert 9 * 60 + 45 <= start.hour * 60 + start.minute <= 10 * 60 + 30
        assert 10 * 60 + 30 <= end.hour * 60 + end.minute <= 11 * 60 + 15
        assert w.confidence >= 0.9
        assert w.chance >= 0.25


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_stays_humble_on_noise(seed: int) -> None:
    """Releases uniform over the week give no window and low confidence everywhere."""
    rng = random.Random(seed)
    releases = sorted(MONDAY + rng.random() * 28 * DAY_S for _ in range(150))
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    _scan(pred, "n", releases, MONDAY, 28)
    assert pred.forecast("n", MONDAY + 28 * DAY_S).windows == ()
    assert max(pred.bin_confidence("n")) < 0.9


def test_thin_history_falls_back() -> None:
    """Under min_days of observation the forecast is the fallback, with no window."""
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET, min_days=7))
    releases = _history(1, 3, hour=10.5)
    _scan(pred, "k", releases, MONDAY, 3)
    forecast = pred.forecast("k", MONDAY + 3 * DAY_S)
    assert forecast.fallback
    assert forecast.windows == ()
    assert forecast.observed_days == pytest.approx(3.0, abs=0.01)


def test_sum_updates_commute() -> None:
    """Releases and exposures recorded in any order give the same model and forecast."""
    releases = _history(7, 21, hour=8.0)
    spans = [(MONDAY + h * 3600.0, MONDAY + (h + 1) * 3600.0) for h in range(21 * 24)]
    a = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    b = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    for at in releases:
        a.record_release("k", at)
    for s, e in spans:
        a.record_exposure("k", s, e)
    events = [("r", at, at) for at in releases] + [("e", s, e) for s, e in spans]
    random.Random(0).shuffle(events)
    for kind, s, e in events:
        if kind == "r":
            b.record_release("k", s)
        else:
            b.record_exposure("k", s, e)
    assert a.state("k") == b.state("k")
    assert a.forecast("k", MONDAY + 21 * DAY_S) == b.forecast("k", MONDAY + 21 * DAY_S)


def test_long_gaps_teach_nothing_and_time_must_not_go_back() -> None:
    """A gap longer than max_gap_s adds no exposure and no release; an older scan is refused."""
    pred = ReleasePredictor(PredictorConfig(max_gap_s=1800))
    pred.observe("k", MONDAY, 0)
    pred.observe("k", MONDAY + 7200, 3)
    assert pred.state("k") == ((0,) * 96, (0.0,) * 96)
    pred.observe("k", MONDAY + 7500, 5)
    n, e = pred.state("k")
    assert sum(n) == 1
    assert sum(e) == pytest.approx(300 / 900)
    with pytest.raises(ValueError, match="older"):
        pred.observe("k", MONDAY, 0)
    with pytest.raises(ValueError, match="open_slots"):
        pred.observe("k", MONDAY + 8000, -1)


def test_bad_config_names_the_field() -> None:
    """A configuration that cannot work is refused, naming the field."""
    with pytest.raises(ValueError, match="bin_s"):
        PredictorConfig(bin_s=7)
    with pytest.raises(ValueError, match="lift"):
        PredictorConfig(lift=1.0)


def test_finds_the_window_from_uneven_scans() -> None:
    """Scans every minute near the hour and every 20 minutes elsewhere still find the window."""
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    releases = _history(11, 28, hour=14.0, jitter_s=600, bursts_per_day=0.5)
    t = MONDAY
    while t < MONDAY + 28 * DAY_S:
        open_now = sum(1 for at in releases if at <= t < at + 1200)
        pred.observe("k", t, open_now)
        local_minutes = ((t + OFFSET) % DAY_S) / 60
        t += 60 if 13 * 60 <= local_minutes < 15 * 60 else 1200
    windows = pred.forecast("k", MONDAY + 28 * DAY_S).windows
    assert windows
    for w in windows:
        start = datetime.fromtimestamp(w.start + OFFSET, UTC)
        assert start.weekday() < 5
        assert 13 * 60 + 30 <= start.hour * 60 + start.minute <= 14 * 60


def _short_lived(seed: int, days: int) -> list[float]:
    """A release each weekday at 09:00 local +-5 min (weekdays from MONDAY)."""
    rng = random.Random(seed)
    return [
        MONDAY - OFFSET + d * DAY_S + 9 * 3600 + rng.uniform(-300, 300)
        for d in range(days)
        if d % 7 < 5
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_candidates_name_the_likeliest_span_from_a_few_sightings(seed: int) -> None:
    """Slots that live a minute, scanned every 5 min for three weeks: a handful of sightings,
    no forecast window (a window needs more evidence), but the span to look at is 09:00."""
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    releases = _short_lived(seed, 21)
    sightings = 0
    t = MONDAY
    while t < MONDAY + 21 * DAY_S:
        open_now = sum(1 for at in releases if at <= t < at + 60)
        sightings += open_now
        pred.observe("k", t, open_now)
        t += 300
    assert 2 <= sightings <= 6
    now = MONDAY + 21 * DAY_S
    assert pred.forecast("k", now, 7 * DAY_S).windows == ()
    spans = pred.candidates("k", now, 7 * DAY_S)
    assert len(spans) == 7  # every day: nothing contradicts any weekday yet
    for w in spans:
        start = datetime.fromtimestamp(w.start + OFFSET, UTC)
        minutes = start.hour * 60 + start.minute
        assert 8 * 60 + 30 <= minutes <= 9 * 60
        assert w.end - w.start == 1800
        assert w.confidence >= 0.3
    # a day that has a forecast window is left to it
    assert spans[0] not in pred.candidates("k", now, 7 * DAY_S, exclude=spans[:1])


def test_candidates_leave_forecast_days_and_contradicted_weekdays_alone() -> None:
    """Eight weeks of a weekday pattern seen well: windows are forecast on weekdays, and the
    weekends, watched and always empty at that hour, are not worth a look."""
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    releases = _history(4, 56, hour=10.5, jitter_s=600, bursts_per_day=0.5)
    _scan(pred, "k", releases, MONDAY, 56)
    now = MONDAY + 56 * DAY_S
    forecast = pred.forecast("k", now, 7 * DAY_S).windows
    assert len(forecast) == 5
    assert pred.candidates("k", now, 7 * DAY_S, exclude=forecast) == ()
    assert len(pred.candidates("k", now, 7 * DAY_S, min_day_p=1e-9)) == 7


def test_no_sightings_no_candidates() -> None:
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    _scan(pred, "k", [], MONDAY, 14)
    assert pred.candidates("k", MONDAY + 14 * DAY_S, 7 * DAY_S) == ()
    # releases recorded where nothing was watched (sums from elsewhere) do not divide by zero
    pred.record_exposure("u", MONDAY, MONDAY + 3600)
    pred.record_release("u", MONDAY + 12 * 3600)
    assert len(pred.candidates("u", MONDAY, 2 * DAY_S, min_confidence=0.1)) == 2
    with pytest.raises(ValueError, match="span_bins"):
        pred.candidates("k", MONDAY, DAY_S, span_bins=0)
