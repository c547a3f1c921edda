"""One circuit breaker: a closed / open / half-open state machine over a storage.

Closed, it counts outcomes in a sliding window; when at least `min_calls` of those in
`window_s` fail at `failure_rate` or more, it opens for `open_s`. Then one caller at a
time may probe (half-open, the probe leased for `probe_lease_s` so a probe that never
reports does not wedge it); the probe's outcome closes the breaker or opens it again.
Opening and closing start a fresh window.

The transitions are pure functions of (status, window, now); where the status and the
window live is a `BreakerStorage`: `MemoryBreakerStorage` for a breaker one process
owns (a proxy provider, a captcha service), or a database-backed one shared by every
process (the store's portal and endpoint breakers). The clock is injected.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol

__all__ = [
    "Breaker",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatus",
    "BreakerStorage",
    "MemoryBreakerStorage",
    "Window",
    "on_allow",
    "on_outcome",
]

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Open when at least `min_calls` outcomes in `window_s` fail at `failure_rate` or more
    (`window_s=inf`, `failure_rate=1`: after `min_calls` failures in a row)."""

    window_s: float = 30.0
    min_calls: int = 10
    failure_rate: float = 0.5
    open_s: float = 15.0
    probe_lease_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"BreakerPolicy.window_s must be > 0, not {self.window_s!r}")
        if self.min_calls < 1:
            raise ValueError(f"BreakerPolicy.min_calls must be >= 1, not {self.min_calls!r}")
        if not 0 < self.failure_rate <= 1:
            raise ValueError(
                f"BreakerPolicy.failure_rate must be within (0, 1], not {self.failure_rate!r}"
            )
        for name in ("open_s", "probe_lease_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"BreakerPolicy.{name} must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """What a breaker's storage keeps besides the window."""

    state: BreakerState = "closed"
    opened_at: float | None = None
    open_until: float | None = None
    probe_lease_until: float | None = None
    reason: str | None = None

    def effective(self, now: float) -> BreakerState:
        """The state as a caller meets it: an open breaker whose time is up is half-open."""
        if self.state == "open" and (self.open_until is None or self.open_until <= now):
            return "half_open"
        return self.state


CLOSED = BreakerStatus()


class Window(Protocol):
    """The outcomes a closed breaker judges by."""

    def add(self, ok: bool, at: float) -> None: ...
    def counts(self, since: float) -> tuple[int, int]:
        """(outcomes, failures) at or after `since`."""
        ...

    def clear(self) -> None: ...


def on_outcome(
    status: BreakerStatus, window: Window, *, ok: bool, now: float, policy: BreakerPolicy
) -> BreakerStatus:
    """The status after one call's outcome."""
    if status.effective(now) == "half_open":  # the probe's outcome decides
        window.clear()
        return CLOSED if ok else _opened(now, policy, "probe failed")
    window.add(ok, now)
    if status.state != "closed":
        return status  # a call that began before the breaker opened: counted, no move
    total, failures = window.counts(now - policy.window_s)
    if total >= policy.min_calls and failures / total >= policy.failure_rate:
        window.clear()
        span = "in a row" if math.isinf(policy.window_s) else f"in {policy.window_s:g}s"
        return _opened(now, policy, f"{failures}/{total} failed {span}")
    return status


def on_allow(
    status: BreakerStatus, *, now: float, policy: BreakerPolicy
) -> tuple[BreakerStatus, bool, float | None]:
    """(new status, allowed, when to ask again): closed lets every call through, open
    none; past `open_until` one probe at a time is let through and leased."""
    state = status.effective(now)
    if state == "closed":
        return status, True, None
    if state == "open":
        return status, False, status.open_until
    lease = status.probe_lease_until
    if lease is not None and lease > now:
        return status, False, lease
    probing = replace(status, state="half_open", probe_lease_until=now + policy.probe_lease_s)
    return probing, True, None


def _opened(now: float, policy: BreakerPolicy, reason: str) -> BreakerStatus:
    return BreakerStatus("open", now, now + policy.open_s, None, reason)


class BreakerStorage(Protocol):
    """Where breakers keep their status and window. `change` is atomic per name (a lock,
    a row lock); `read` and `append` are the cheap paths for a closed breaker."""

    def read(self, name: str) -> BreakerStatus: ...

    def append(self, name: str, ok: bool, at: float) -> None:
        """Add a success to a closed breaker's window (it cannot move the breaker)."""
        ...

    def change(
        self, name: str, step: Callable[[BreakerStatus, Window], BreakerStatus]
    ) -> BreakerStatus:
        """Apply `step` to the stored status and window atomically; returns the new status."""
        ...


class _Deque:
    def __init__(self) -> None:
        self.items: deque[tuple[float, bool]] = deque()

    def add(self, ok: bool, at: float) -> None:
        self.items.append((at, ok))

    def counts(self, since: float) -> tuple[int, int]:
        while self.items and self.items[0][0] < since:
            self.items.popleft()
        return len(self.items), sum(1 for _, ok in self.items if not ok)

    def clear(self) -> None:
        self.items.clear()


class MemoryBreakerStorage:
    """Breakers of this process, in memory; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, BreakerStatus] = {}
        self._windows: dict[str, _Deque] = {}

    def read(self, name: str) -> BreakerStatus:
        with self._lock:
            return self._status.get(name, CLOSED)

    def append(self, name: str, ok: bool, at: float) -> None:
        with self._lock:
            self._windows.setdefault(name, _Deque()).add(ok, at)

    def change(
        self, name: str, step: Callable[[BreakerStatus, Window], BreakerStatus]
    ) -> BreakerStatus:
        with self._lock:
            status = step(self._status.get(name, CLOSED), self._windows.setdefault(name, _Deque()))
            self._status[name] = status
            return status


class Breaker:
    """One named breaker: `allow()` before a call, `record(ok=…)` after it."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        storage: BreakerStorage | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self.storage: BreakerStorage = storage or MemoryBreakerStorage()
        self._clock = clock

    @property
    def state(self) -> BreakerState:
        return self.storage.read(self.name).effective(self._clock())

    def status(self) -> BreakerStatus:
        return self.storage.read(self.name)

    def check(self) -> tuple[bool, float | None]:
        """(allowed, when to ask again); an expired open breaker lets one probe through."""
        now = self._clock()
        current = self.storage.read(self.name)  # most calls meet a closed breaker: no lock
        if current.state == "closed":
            return True, None
        if current.effective(now) == "open":
            return False, current.open_until
        verdict: list[tuple[bool, float | None]] = []

        def step(status: BreakerStatus, _window: Window) -> BreakerStatus:
            new, allowed, retry_at = on_allow(status, now=now, policy=self.policy)
            verdict.append((allowed, retry_at))
            return new

        self.storage.change(self.name, step)
        return verdict[0]

    def allow(self) -> bool:
        """May a call go out now? (Claims the half-open probe when it is free.)"""
        return self.check()[0]

    def available(self) -> bool:
        """Whether a call would be allowed, without claiming the half-open probe."""
        now = self._clock()
        return on_allow(self.storage.read(self.name), now=now, policy=self.policy)[1]

    def record(self, *, ok: bool) -> BreakerState:
        """Fold one call's outcome in; returns the new state."""
        now = self._clock()
        if ok and self.storage.read(self.name).state == "closed":
            self.storage.append(self.name, ok, now)  # a success cannot move a closed breaker
            return "closed"
        status = self.storage.change(
            self.name, lambda s, w: on_outcome(s, w, ok=ok, now=now, policy=self.policy)
        )
        return status.effective(now)

    def reset(self) -> None:
        """Closed, with an empty window."""

        def step(_status: BreakerStatus, window: Window) -> BreakerStatus:
            window.clear()
            return CLOSED

        self.storage.change(self.name, step)
