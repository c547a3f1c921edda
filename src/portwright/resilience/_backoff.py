"""One exponential backoff: `first_s · factor^(n-1)`, capped, with downward jitter.

Every retry loop in Portwright asks this for its pause. The cap is a hard bound (jitter
only ever shortens a pause), and the random source is injectable: a test passes a fixed
function, the orchestrator a keyed one so that a replayed workflow waits the same.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "keyed_random"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pause before retry `attempt` (1-based): a ceiling of `first_s · factor^(attempt-1)`
    capped at `cap_s`, then shortened by up to `jitter` of itself (0 = no jitter)."""

    first_s: float
    cap_s: float
    factor: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("first_s", "cap_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Backoff.{name} must be a finite number >= 0, not {value!r}")
        if not math.isfinite(self.factor) or self.factor < 1:
            raise ValueError(f"Backoff.factor must be a finite number >= 1, not {self.factor!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff.jitter must be within [0, 1], not {self.jitter!r}")

    def ceiling(self, attempt: int) -> float:
        """The pause before jitter: grows by `factor` per attempt, never past `cap_s`."""
        steps = max(0, attempt - 1)
        if self.first_s == 0 or self.cap_s == 0:
            return 0.0
        if self.factor > 1 and steps * math.log(self.factor) >= math.log(self.cap_s / self.first_s):
            return self.cap_s  # also keeps factor**steps from overflowing
        return min(self.cap_s, self.first_s * self.factor**steps)

    def delay(self, attempt: int, *, rand: Callable[[], float] = random.random) -> float:
        """The pause, within [(1 - jitter) · ceiling, ceiling]; `rand` answers in [0, 1)."""
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        fraction = min(1.0, max(0.0, rand()))
        return ceiling * (1.0 - self.jitter * fraction)


def keyed_random(key: str) -> Callable[[], float]:
    """A random source that always answers the same fraction in [0, 1) for `key`."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    return lambda: fraction
