"""Deterministic exponential backoff with jitter (the same on replay)."""

from __future__ import annotations

import hashlib

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, *, base: float, cap: float, key: str) -> float:
    """Full-jitter-ish delay for `attempt` (1-based): between half and all of base·2^(n-1)."""
    ceiling = float(min(cap, base * 2.0 ** max(0, attempt - 1)))
    digest = hashlib.blake2b(f"{key}|{attempt}".encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    return ceiling * (0.5 + 0.5 * fraction)
