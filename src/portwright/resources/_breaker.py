"""An in-process circuit breaker for one provider (a proxy provider, a captcha service).

The orchestrator's portal breakers live in the database, shared by all workers;
a provider breaker guards calls this process makes, so it stays in memory:
when at least `min_calls` outcomes within `window_s` fail at `failure_rate` or
more, it opens for `open_s`; then one probe is let through (half-open), whose
outcome closes or re-opens it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["BreakerConfig", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When a provider's breaker opens, and for how long."""

    window_s: float = 60.0
    min_calls: int = 5
    failure_rate: float = 0.5
    open_s: float = 30.0


class CircuitBreaker:
    """Thread-safe: `allow()` before a call, `record(ok=…)` after it."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._state: BreakerState = "closed"
        self._open_until = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._expire()
            return self._state

    def allow(self) -> bool:
        """May a call go out now? An expired open breaker lets exactly one probe through."""
        with self._lock:
            self._expire()
            if self._state == "closed":
                return True
            if self._state == "half_open" and not self._probing:
                self._probing = True
                return True
            return False

    def available(self) -> bool:
        """Whether a call would be allowed, without claiming the half-open probe."""
        with self._lock:
            self._expire()
            return self._state == "closed" or (self._state == "half_open" and not self._probing)

    def record(self, *, ok: bool) -> BreakerState:
        """Fold one call's outcome in; returns the new state."""
        now = self._clock()
        with self._lock:
            self._expire()
            if self._state == "half_open":
                self._probing = False
                if ok:
                    self._state = "closed"
                    self._outcomes.clear()
                else:
                    self._trip(now)
                return self._state
            self._outcomes.append((now, ok))
            while self._outcomes and self._outcomes[0][0] < now - self.config.window_s:
                self._outcomes.popleft()
            total = len(self._outcomes)
            failures = sum(1 for _, good in self._outcomes if not good)
            if (
                self._state == "closed"
                and total >= self.config.min_calls
                and failures / total >= self.config.failure_rate
            ):
                self._trip(now)
            return self._state

    def reset(self) -> None:
        with self._lock:
            self._state = "closed"
            self._outcomes.clear()
            self._probing = False

    def _trip(self, now: float) -> None:
        self._state = "open"
        self._open_until = now + self.config.open_s
        self._outcomes.clear()

    def _expire(self) -> None:
        if self._state == "open" and self._clock() >= self._open_until:
            self._state = "half_open"
            self._probing = False
