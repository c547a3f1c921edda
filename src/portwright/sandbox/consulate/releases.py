"""A release model worth predicting: when a consulate puts slots on its calendar.

Per (center, visa type) a schedule of slot releases in simulated time (POSIX
seconds; nothing reads the wall clock):

- **window releases** — on the pattern's weekdays, one release of `size` slots
  around a local hour, the centre moving by `drift_s_per_week` each week and
  each day's release jittered uniformly within ±`jitter_s`;
- **cancellation bursts** — a Poisson number per day (mean
  `bursts_per_day`) at uniform times of day, each returning 1..`burst_max`
  slots one by one within `burst_spread_s`;
- **holidays** — listed dates, plus weekdays drawn as holidays with
  probability `holiday_chance`, have no window release (cancellations still
  happen: people cancel on holidays too).

Every random number is a keyed hash of (seed, center, visa, local day, label),
so a day's releases depend on the seed only: generating [a, c) equals
generating [a, b) then [b, c), and weeks of history take milliseconds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

__all__ = ["DAY_S", "ReleaseFeed", "ReleasePattern", "SlotRelease", "generate_releases"]

DAY_S = 86_400
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class ReleasePattern:
    """How one (center, visa type) releases slots. Hours and weekdays are local."""

    utc_offset_s: int = 0
    hour: float = 9.0
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    jitter_s: float = 600.0
    drift_s_per_week: float = 60.0
    size: int = 6
    bursts_per_day: float = 0.5
    burst_max: int = 3
    burst_spread_s: float = 120.0
    holidays: frozenset[date] = field(default_factory=frozenset)
    holiday_chance: float = 0.03
    drift_from: date = date(2030, 1, 7)  # the week the window centre sits at `hour`

    def __post_init__(self) -> None:
        if not 0.0 <= self.hour < 24.0:
            raise ValueError(f"hour must be in [0, 24), got {self.hour}")
        if any(not 0 <= d <= 6 for d in self.weekdays):
            raise ValueError(f"weekdays must be 0..6 (Monday = 0), got {sorted(self.weekdays)}")
        if self.jitter_s < 0 or self.burst_spread_s < 0 or self.bursts_per_day < 0:
            raise ValueError("jitter_s, burst_spread_s and bursts_per_day must be >= 0")
        if self.size < 1 or self.burst_max < 1:
            raise ValueError("size and burst_max must be >= 1")
        if not 0.0 <= self.holiday_chance <= 1.0:
            raise ValueError(f"holiday_chance must be in [0, 1], got {self.holiday_chance}")


@dataclass(frozen=True, slots=True)
class SlotRelease:
    """`slots` slots appeared at simulated time `at` (POSIX seconds)."""

    at: float
    center: str
    visa: str
    slots: int
    kind: Literal["window", "cancellation"]


def _draw(seed: int, center: str, visa: str, day: int, label: str) -> float:
    text = f"{seed}|{center}|{visa}|{day}|{label}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _poisson(u: float, mean: float) -> int:
    """Inverse-CDF Poisson sample from one uniform draw (bounded loop)."""
    k, p = 0, math.exp(-mean)
    cdf = p
    while u > cdf and k < 1000:
        k += 1
        p *= mean / k
        cdf += p
    return k


def _day_releases(
    seed: int, center: str, visa: str, pattern: ReleasePattern, day: int
) -> list[SlotRelease]:
    """The releases of one local day (`day` = days since 1970-01-01, local)."""
    midnight_utc = day * DAY_S - pattern.utc_offset_s
    today = _EPOCH + timedelta(days=day)
    out: list[SlotRelease] = []
    holiday = today in pattern.holidays or (
        _draw(seed, center, visa, day, "holiday") < pattern.holiday_chance
    )
    if today.weekday() in pattern.weekdays and not holiday:
        weeks = (today - pattern.drift_from).days // 7
        centre = (pattern.hour * 3600 + pattern.drift_s_per_week * weeks) % DAY_S
        jitter = (2 * _draw(seed, center, visa, day, "jitter") - 1) * pattern.jitter_s
        at = midnight_utc + min(max(centre + jitter, 0.0), DAY_S - 1.0)
        out.append(SlotRelease(at, center, visa, pattern.size, "window"))
    bursts = _poisson(_draw(seed, center, visa, day, "bursts"), pattern.bursts_per_day)
    for b in range(bursts):
        start = midnight_utc + _draw(seed, center, visa, day, f"burst{b}") * DAY_S
        n = 1 + int(_draw(seed, center, visa, day, f"burst{b}n") * pattern.burst_max)
        for j in range(n):
            offset = _draw(seed, center, visa, day, f"burst{b}.{j}") * pattern.burst_spread_s
            out.append(SlotRelease(start + offset, center, visa, 1, "cancellation"))
    return out


def generate_releases(
    center: str, visa: str, pattern: ReleasePattern, *, seed: int, start: float, end: float
) -> list[SlotRelease]:
    """Every release of (center, visa) with `start <= at < end`, in time order."""
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    if end - start > 366 * 10 * DAY_S:
        raise ValueError("the span is longer than ten years")
    first = math.floor((start + pattern.utc_offset_s) / DAY_S) - 1
    last = math.floor((end + pattern.utc_offset_s) / DAY_S) + 1
    out = [
        r
        for day in range(first, last + 1)
        for r in _day_releases(seed, center, visa, pattern, day)
        if start <= r.at < end
    ]
    out.sort(key=lambda r: (r.at, r.kind))
    return out


class ReleaseFeed:
    """Replays a pair's releases against a simulated clock, generating a day ahead lazily."""

    def __init__(
        self, center: str, visa: str, pattern: ReleasePattern, *, seed: int, start: float
    ) -> None:
        self.center, self.visa, self.pattern, self.seed = center, visa, pattern, seed
        self._generated_to = start
        self._pending: list[SlotRelease] = []

    def due(self, now: float) -> Iterator[SlotRelease]:
        """Releases that happened since the last call, up to simulated time `now`."""
        if now > self._generated_to:
            self._pending += generate_releases(
                self.center,
                self.visa,
                self.pattern,
                seed=self.seed,
                start=self._generated_to,
                end=now + DAY_S,
            )
            self._generated_to = now + DAY_S
        while self._pending and self._pending[0].at <= now:
            yield self._pending.pop(0)
