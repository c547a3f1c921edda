"""Deterministic exponential backoff with jitter (the same on replay)."""

from __future__ import annotations

from portwright.resilience import Backoff, keyed_random

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, *, base: float, cap: float, key: str) -> float:
    """Delay for `attempt` (1-based): between half and all of base·2^(n-1), capped; the
    jitter is keyed by `key` and the attempt, so a replay waits the same."""
    return Backoff(base, cap, jitter=0.5).delay(attempt, rand=keyed_random(f"{key}|{attempt}"))
