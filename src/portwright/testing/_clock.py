"""A manual clock: simulated time that moves only when something sleeps or a test says so."""

from __future__ import annotations

import asyncio

__all__ = ["ManualClock"]


class ManualClock:
    """`now()` is a number; `sleep_until(t)` jumps there (never back) and yields once.

    One task driving the clock (a simulation, a `WatchHub.run`) replays hours of simulated
    time in milliseconds, deterministically.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)
        self.sleeps = 0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time does not go back ({seconds} s)")
        self.t += seconds

    async def sleep_until(self, when: float) -> None:
        self.sleeps += 1
        self.t = max(self.t, when)
        await asyncio.sleep(0)
