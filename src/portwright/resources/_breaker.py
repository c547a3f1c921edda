"""An in-process circuit breaker for one provider (a proxy provider, a captcha service).

The orchestrator's portal breakers live in the database, shared by all workers;
a provider breaker guards calls this process makes, so it stays in memory. Both are
the resilience kit's `Breaker`: when at least `min_calls` outcomes within `window_s`
fail at `failure_rate` or more, it opens for `open_s`; then one probe is let through
(half-open), whose outcome closes or re-opens it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from portwright.resilience import Breaker, BreakerPolicy, MemoryBreakerStorage

__all__ = ["BreakerConfig", "CircuitBreaker"]


@dataclass(frozen=True)
class BreakerConfig(BreakerPolicy):
    """When a provider's breaker opens, and for how long (a provider's defaults)."""

    window_s: float = 60.0
    min_calls: int = 5
    open_s: float = 30.0


class CircuitBreaker(Breaker):
    """Thread-safe: `allow()` before a call, `record(ok=…)` after it."""

    def __init__(
        self,
        name: str,
        config: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            name, config or BreakerConfig(), storage=MemoryBreakerStorage(), clock=clock
        )
        self.config = self.policy
