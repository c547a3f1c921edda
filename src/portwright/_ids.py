"""Time-sortable identifiers: `<prefix>_<12 hex ms><10 hex random>`."""

from __future__ import annotations

import secrets
import time

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """A new id that sorts by creation time (millisecond resolution) then randomly."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(5)}"
