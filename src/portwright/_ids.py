"""Time-sortable identifiers: `<prefix>_<12 hex ms><10 hex random>`."""

from __future__ import annotations

import hashlib
import secrets
import time

__all__ = ["claimed_id", "claimed_ids", "new_id", "new_ids"]


def new_id(prefix: str) -> str:
    """A new id that sorts by creation time (millisecond resolution) then randomly."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` new ids from one instant that sort in the order given: the random part is
    shared and its last five hex digits count up (at most 1,048,576 ids per call)."""
    if not 0 <= count <= 0x100000:
        raise ValueError(f"new_ids: count {count} is not within 0..1048576")
    stamp = f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(3)[:5]}"
    return [f"{stamp}{index:05x}" for index in range(count)]


def claimed_id(prefix: str, at: float, *parts: str) -> str:
    """The id of what a claim made at `at` creates: time-sortable like `new_id`, and the same
    every time for the same claim (its random part is a hash of `parts`), so a request
    retried under the same claim names the same record instead of making a second."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]
    return f"{prefix}_{int(at * 1000):012x}{digest}"


def claimed_ids(prefix: str, at: float, count: int, *parts: str) -> list[str]:
    """`count` ids of what one claim made at `at` creates (a batch's items): shaped and
    ordered like `new_ids` (one instant, a shared part, the last five hex digits counting
    up), and the same every time for the same claim, as `claimed_id` is."""
    if not 0 <= count <= 0x100000:
        raise ValueError(f"claimed_ids: count {count} is not within 0..1048576")
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:5]
    stamp = f"{prefix}_{int(at * 1000):012x}{digest}"
    return [f"{stamp}{index:05x}" for index in range(count)]
