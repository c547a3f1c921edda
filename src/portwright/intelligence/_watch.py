"""Polling a portal around predicted windows without ever exceeding its request budget.

`RequestBudget` is a sliding-window limit: at most `limit` requests granted in
any `window_s` seconds. `PollPlanner` spends a daily allowance: densely inside
predicted windows (padded by `pad_s`), sparsely outside, and uniformly when the
forecast is the fallback. The planner only proposes times; every request still
goes through the budgets, which have the last word.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from portwright.intelligence._model import DAY_S, Window

__all__ = ["PollPlanner", "RequestBudget"]


class RequestBudget:
    """At most `limit` requests in any `window_s`-second window (times must not go back)."""

    def __init__(self, limit: int, window_s: float = 3600.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.limit, self.window_s = limit, window_s
        self._granted: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._granted and self._granted[0] <= now - self.window_s:
            self._granted.popleft()

    def next_allowed(self, now: float) -> float:
        """The earliest time >= now at which a request would be granted."""
        self._check(now)
        self._trim(now)
        if len(self._granted) < self.limit:
            return now
        return self._granted[len(self._granted) - self.limit] + self.window_s

    def try_acquire(self, now: float) -> bool:
        """Grant and record a request at `now` if the window has room."""
        if self.next_allowed(now) > now:
            return False
        self._granted.append(now)
        return True

    def _check(self, now: float) -> None:
        if self._granted and now < self._granted[-1]:
            raise ValueError(f"time went back: {now} < last grant {self._granted[-1]}")


@dataclass(frozen=True, slots=True)
class PollPlanner:
    """Proposes the next poll time given the predicted windows and a daily allowance."""

    per_day: int
    per_hour: int
    pad_s: float = 300.0
    dense_share: float = 0.6  # at most this share of the day's requests goes to windows

    def __post_init__(self) -> None:
        if self.per_day < 1 or self.per_hour < 1:
            raise ValueError("per_day and per_hour must be >= 1")
        if not 0.0 < self.dense_share < 1.0:
            raise ValueError(f"dense_share must be in (0, 1), got {self.dense_share}")

    def intervals(self, windows: Sequence[Window], now: float) -> tuple[float, float]:
        """(dense, sparse) polling intervals for the day starting at `now`.

        With no window that day the sparse interval is the uniform one and the dense
        interval, used only to follow a sighting, is the hourly cap's: a burst is followed
        as closely on a day without a window as on a day with one (it used to be followed
        at the uniform interval, i.e. not at all).
        """
        spans = self._spans(windows, now, now + DAY_S)
        inside = sum(min(e, now + DAY_S) - max(s, now) for s, e in spans)
        uniform = DAY_S / self.per_day
        if inside <= 0:
            return min(3600.0 / self.per_hour, uniform), uniform
        dense = max(3600.0 / self.per_hour, inside / (self.dense_share * self.per_day))
        sparse = (DAY_S - inside) / max(self.per_day - inside / dense, 1.0)
        return dense, max(sparse, dense)

    def next_poll(
        self, windows: Sequence[Window], now: float, follow_until: float = -math.inf
    ) -> float:
        """When to poll next after a poll at `now`.

        Until `follow_until` (set by the caller after it saw new slots: cancellations
        come in bursts) the poll is dense even outside a window.
        """
        dense, sparse = self.intervals(windows, now)
        if now < follow_until:
            return now + dense
        spans = self._spans(windows, now, now + DAY_S)
        starts = [s for s, _ in spans]
        i = bisect.bisect_right(starts, now) - 1
        if i >= 0 and now < spans[i][1]:
            return now + dense
        upcoming = starts[i + 1] if i + 1 < len(starts) else float("inf")
        return min(now + sparse, upcoming)

    def _spans(
        self, windows: Sequence[Window], start: float, end: float
    ) -> list[tuple[float, float]]:
        """Padded windows overlapping [start, end), merged and sorted."""
        out: list[tuple[float, float]] = []
        for w in sorted(windows, key=lambda w: w.start):
            s, e = w.start - self.pad_s, w.end + self.pad_s
            if e <= start or s >= end:
                continue
            if out and s <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
        return out
