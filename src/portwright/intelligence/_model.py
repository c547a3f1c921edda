"""When do slots appear? A Gamma-Poisson rate per time-of-day bin, learned online.

Per key (any string: the caller composes portal, center and visa type) the
model keeps sufficient statistics only — sums, so updates commute:

- per time-of-day bin `b` (local time, `bin_s` wide, pooled over all days):
  releases seen `n_b` and exposure `e_b` (bin-days actually watched);
- per (weekday, bin) cell the same two sums, to tell weekdays apart.

The rate of releases in bin `b` has a Gamma(1, 1/u) prior whose mean `u` is
the key's average rate per bin-day (so, before evidence, every bin looks
average) and posterior Gamma(1 + n_b, 1/u + e_b). A bin is *hot* when the
posterior probability that its rate exceeds `lift` times the average is at least
`min_confidence`; because the shape is an integer that probability is a
Poisson sum, exact and cheap. Adjacent hot bins merge into a window. For a
given date the window's *chance* is P(at least one release), from the
(weekday, bin) cells shrunk toward the pooled bin rate (strength `cell_prior`
bin-days), so a weekday-only pattern predicts nothing on Sundays.

With less than `min_days` of observation the forecast is the humble fallback:
no windows, `fallback=True` — a watcher then polls uniformly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "EXPLORE_BINS",
    "EXPLORE_MIN",
    "Forecast",
    "PredictorConfig",
    "ReleasePredictor",
    "Window",
]

DAY_S = 86_400
# what a watcher explores by default on days with no forecast window (`candidates`):
# spans of this many bins scoring at least this confidence
EXPLORE_BINS = 2
EXPLORE_MIN = 0.3


@dataclass(frozen=True, slots=True)
class PredictorConfig:
    """Tuning of the predictor. Times are seconds; `utc_offset_s` sets the local day."""

    bin_s: int = 900
    utc_offset_s: int = 0
    max_gap_s: float = 3600.0
    lift: float = 3.0
    min_confidence: float = 0.9
    min_chance: float = 0.25
    min_days: float = 7.0
    cell_prior: float = 2.0

    def __post_init__(self) -> None:
        if self.bin_s <= 0 or DAY_S % self.bin_s:
            raise ValueError(f"bin_s must divide a day (86400 s), got {self.bin_s}")
        if not 0 < self.max_gap_s <= DAY_S:
            raise ValueError(f"max_gap_s must be in (0, 86400], got {self.max_gap_s}")
        if self.lift <= 1.0:
            raise ValueError(f"lift must be > 1, got {self.lift}")
        if not 0.0 < self.min_confidence < 1.0 or not 0.0 <= self.min_chance < 1.0:
            raise ValueError("min_confidence must be in (0, 1) and min_chance in [0, 1)")
        if self.min_days < 0 or self.cell_prior <= 0:
            raise ValueError("min_days must be >= 0 and cell_prior > 0")

    @property
    def bins(self) -> int:
        return DAY_S // self.bin_s


@dataclass(frozen=True, slots=True)
class Window:
    """A predicted release window [start, end) in POSIX seconds."""

    start: float
    end: float
    confidence: float  # P(the window's rate is really above lift times average), its weakest bin
    chance: float  # P(at least one release in it on that date)


@dataclass(frozen=True, slots=True)
class Forecast:
    key: str
    windows: tuple[Window, ...]
    fallback: bool
    observed_days: float
    releases: int


@dataclass
class _Stats:
    bins: int
    n: list[int] = field(default_factory=list)
    e: list[float] = field(default_factory=list)
    cell_n: list[int] = field(default_factory=list)
    cell_e: list[float] = field(default_factory=list)
    last: tuple[float, int] | None = None

    def __post_init__(self) -> None:
        self.n, self.e = [0] * self.bins, [0.0] * self.bins
        self.cell_n, self.cell_e = [0] * (7 * self.bins), [0.0] * (7 * self.bins)


def _poisson_cdf(k: int, mean: float) -> float:
    """P(Poisson(mean) <= k), summed in log space (k is a count of releases)."""
    if k < 0:
        return 0.0
    total, log_term = 0.0, -mean
    for i in range(k + 1):
        if i:
            log_term += math.log(mean) - math.log(i) if mean > 0 else -math.inf
        total += math.exp(log_term)
    return min(total, 1.0)


class ReleasePredictor:
    """Online per-key model of when releases happen; see the module docstring."""

    def __init__(self, config: PredictorConfig | None = None) -> None:
        self.config = config or PredictorConfig()
        self._keys: dict[str, _Stats] = {}

    def _stats(self, key: str) -> _Stats:
        stats = self._keys.get(key)
        if stats is None:
            stats = self._keys[key] = _Stats(self.config.bins)
        return stats

    def _cell(self, at: float) -> tuple[int, int]:
        """(time-of-day bin, weekday) of a POSIX time, local to the configured offset."""
        local = at + self.config.utc_offset_s
        day = math.floor(local / DAY_S)
        b = int((local - day * DAY_S) // self.config.bin_s)
        return b, (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0

    # -- updates (sums: order does not matter) ---------------------------------------

    def record_release(self, key: str, at: float) -> None:
        """One release happened at `at`."""
        stats = self._stats(key)
        b, w = self._cell(at)
        stats.n[b] += 1
        stats.cell_n[w * stats.bins + b] += 1

    def record_exposure(self, key: str, start: float, end: float) -> None:
        """The key was watched over [start, end): releases there would have been seen."""
        if not end >= start:
            raise ValueError(f"exposure ends ({end}) before it starts ({start})")
        if end - start > DAY_S:
            raise ValueError("an exposure longer than a day teaches nothing precise")
        stats, bin_s = self._stats(key), self.config.bin_s
        t = start
        for _ in range(stats.bins + 2):  # at most a day: bounded even if rounding stalls
            if t >= end:
                break
            b, w = self._cell(t)
            local = t + self.config.utc_offset_s
            bin_end = (math.floor(local / bin_s) + 1) * bin_s - self.config.utc_offset_s
            step = max(min(end, bin_end) - t, 1e-6)
            stats.e[b] += step / bin_s
            stats.cell_e[w * stats.bins + b] += step / bin_s
            t += step

    def observe(self, key: str, at: float, open_slots: int, new_slots: int | None = None) -> None:
        """A scan at `at` saw `open_slots` slots open (0 = "nothing open").

        Scans of one key arrive in time order. The interval since the previous
        scan counts as watched when it is at most `max_gap_s`; more slots open
        than before (or, when the caller knows slot ids, `new_slots` > 0: slots
        the previous scan did not show) means a release, placed at the
        interval's midpoint.
        """
        if open_slots < 0 or (new_slots is not None and new_slots < 0):
            raise ValueError(f"open_slots and new_slots must be >= 0, got {open_slots}")
        stats = self._stats(key)
        if stats.last is not None:
            prev_at, prev_open = stats.last
            if at < prev_at:
                raise ValueError(f"scan at {at} is older than the previous one at {prev_at}")
            if at - prev_at <= self.config.max_gap_s:
                self.record_exposure(key, prev_at, at)
                released = open_slots > prev_open if new_slots is None else new_slots > 0
                if released:
                    self.record_release(key, (prev_at + at) / 2)
        stats.last = (at, open_slots)

    def observe_run(
        self, key: str, first_at: float, last_at: float, open_slots: int, new_slots: int
    ) -> None:
        """A run of scans from `first_at` to `last_at` that all saw the same open slots
        (`new_slots` of them not shown by the run before): the stored form of observations."""
        if last_at < first_at:
            raise ValueError(f"run ends ({last_at}) before it starts ({first_at})")
        self.observe(key, first_at, open_slots, new_slots)
        step = self.config.max_gap_s
        t = first_at
        for _ in range(100_000):  # bounded: a run longer than ~11 years is cut short
            if t >= last_at:
                break
            t = min(t + step, last_at)
            self.observe(key, t, open_slots, 0)

    # -- reading ----------------------------------------------------------------------

    def state(self, key: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """The per-bin sums (releases, exposure) — for tests and charts."""
        stats = self._stats(key)
        return tuple(stats.n), tuple(round(x, 9) for x in stats.e)

    def bin_confidence(self, key: str) -> list[float]:
        """P(rate of bin b > lift times the key's average), per time-of-day bin."""
        stats = self._stats(key)
        avg = (sum(stats.n) + 0.5) / (sum(stats.e) + 1.0)
        beta0 = 1.0 / avg
        threshold = self.config.lift * avg
        return [
            _poisson_cdf(n, (beta0 + e) * threshold) for n, e in zip(stats.n, stats.e, strict=True)
        ]

    def candidates(
        self,
        key: str,
        now: float,
        horizon_s: float,
        *,
        span_bins: int = EXPLORE_BINS,
        min_confidence: float = EXPLORE_MIN,
        min_day_p: float = 0.05,
        exclude: Sequence[Window] = (),
    ) -> tuple[Window, ...]:
        """Where to look on days no window is forecast: the likeliest time of day.

        Spans of `span_bins` adjacent bins (a release jittered across a bin edge
        counts once in the span) are scored like a bin — P(the span's rate is above
        `lift` times its average), releases and exposure summed — and the best span
        scoring at least `min_confidence` is returned on the days starting within
        [now, now + horizon_s) that have no `exclude` window (the forecast's) and
        whose weekday does not contradict it: that weekday's sightings in the span
        are not implausibly few for the span's rate over all days (Poisson
        P(count <= seen) >= `min_day_p`; a weekday pattern's weekends fail once
        watched a few weeks). Windows carry the span's confidence and the chance its
        pooled rate gives. No span qualifies: (). Unlike `forecast` this claims no
        window: it names the hypothesis a watcher can afford to test, and the
        watcher's own scans there confirm it (more releases) or refute it (exposure
        without them). Bins already hot are candidates too: a hot bin whose chance
        on a weekday fell short of `min_chance` (sparse scans see few short-lived
        releases per weekday) is still the best place to look that day.
        """
        cfg, stats = self.config, self._stats(key)
        if not 1 <= span_bins <= cfg.bins:
            raise ValueError(f"span_bins must be in 1..{cfg.bins}, got {span_bins}")
        total, exposure = sum(stats.n), sum(stats.e)
        if total == 0 or exposure <= 0:
            return ()
        avg = (total + 0.5) / (exposure + 1.0)
        best: tuple[float, int] | None = None
        for b in range(cfg.bins):
            cells = [(b + i) % cfg.bins for i in range(span_bins)]
            n = sum(stats.n[c] for c in cells)
            e = sum(stats.e[c] for c in cells)
            confidence = _poisson_cdf(n, cfg.lift * (1.0 + avg * e))
            if confidence >= min_confidence and (best is None or confidence > best[0]):
                best = (confidence, b)
        if best is None:
            return ()
        confidence, first = best
        cells = [(first + i) % cfg.bins for i in range(span_bins)]
        rate = sum((1 + stats.n[c]) / (1 / avg + stats.e[c]) for c in cells)
        chance = 1.0 - math.exp(-rate)
        n_span, e_span = sum(stats.n[c] for c in cells), sum(stats.e[c] for c in cells)
        offset = cfg.utc_offset_s
        taken = {math.floor((w.start + offset) / DAY_S) for w in exclude}
        day = math.floor((now + offset) / DAY_S)
        out: list[Window] = []
        for _ in range(int(horizon_s // DAY_S) + 2):
            start = day * DAY_S - offset + first * cfg.bin_s
            end = start + span_bins * cfg.bin_s
            if start >= now + horizon_s:
                break
            weekday = (day + 3) % 7
            n_day = sum(stats.cell_n[weekday * cfg.bins + c] for c in cells)
            e_day = sum(stats.cell_e[weekday * cfg.bins + c] for c in cells)
            expected = n_span * e_day / e_span if e_span > 0 else 0.0
            plausible = _poisson_cdf(n_day, expected) >= min_day_p
            if end > now and day not in taken and plausible:
                out.append(Window(start, end, confidence, chance))
            day += 1
        return tuple(out)

    def forecast(self, key: str, now: float, horizon_s: float = 7 * DAY_S) -> Forecast:
        """Predicted windows starting within [now, now + horizon_s)."""
        cfg, stats = self.config, self._stats(key)
        days = sum(stats.e) / cfg.bins
        total = sum(stats.n)
        if days < cfg.min_days:
            return Forecast(key, (), True, days, total)
        confidence = self.bin_confidence(key)
        avg = (total + 0.5) / (sum(stats.e) + 1.0)
        pooled = [(1 + n) / (1 / avg + e) for n, e in zip(stats.n, stats.e, strict=True)]
        windows: list[Window] = []
        t = math.floor((now + cfg.utc_offset_s) / cfg.bin_s) * cfg.bin_s - cfg.utc_offset_s
        run: list[tuple[float, float, float]] = []  # (bin start, confidence, expected releases)
        steps = min(int(horizon_s // cfg.bin_s) + 2, 366 * cfg.bins)
        for _ in range(steps):
            b, w = self._cell(t)
            if confidence[b] >= cfg.min_confidence:
                cell = w * cfg.bins + b
                mean = (cfg.cell_prior * pooled[b] + stats.cell_n[cell]) / (
                    cfg.cell_prior + stats.cell_e[cell]
                )
                run.append((t, confidence[b], mean))
            elif run:
                windows += self._close(run, t)
                run = []
            t += cfg.bin_s
        if run:
            windows += self._close(run, t)
        kept = tuple(w for w in windows if w.chance >= cfg.min_chance and w.end > now)
        return Forecast(key, kept, False, days, total)

    @staticmethod
    def _close(run: list[tuple[float, float, float]], end: float) -> list[Window]:
        conf = min(c for _, c, _ in run)
        chance = 1.0 - math.exp(-sum(m for _, _, m in run))
        return [Window(run[0][0], end, conf, chance)]
