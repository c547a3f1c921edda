"""Retry policy of outbound deliveries: exponential backoff with jitter, Retry-After first."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["DeliveryPolicy", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard the relay tries: backoff `base_s * 2**(n-1)` (±`jitter`), capped at `max_s`;
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
        raw = min(self.max_s, self.base_s * 2 ** max(0, attempt - 1))
        return float(raw * random.uniform(1 - self.jitter, 1 + self.jitter))


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None
