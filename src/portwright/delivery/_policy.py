"""Retry policy of outbound deliveries: exponential backoff with jitter, Retry-After first."""

from __future__ import annotations

from dataclasses import dataclass

from portwright.resilience import Backoff

__all__ = ["DeliveryPolicy"]


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard the relay tries: backoff `base_s * 2**(n-1)` capped at `max_s`, shortened
    by up to `jitter` of itself;
    a `Retry-After` answer wins (capped too). The breaker opens after `breaker_threshold`
    consecutive failures for `breaker_open_s`."""

    base_s: float = 1.0
    max_s: float = 600.0
    jitter: float = 0.2
    breaker_threshold: int = 5
    breaker_open_s: float = 30.0
    timeout_s: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(self.max_s, max(0.0, retry_after))
        return Backoff(self.base_s, self.max_s, jitter=self.jitter).delay(attempt)
