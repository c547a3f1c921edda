"""One `Retry-After` parser (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.

Rules, for a value that comes from outside:
- missing, empty, or neither form (garbage, a negative number, `inf`, `nan`) → None, and
  the caller uses its own default;
- delta-seconds: digits, with an optional fraction (some servers send `1.5`);
- an HTTP-date: seconds from `now` until then; a date in the past → 0; a date without a
  zone is read as UTC;
- anything above `cap_s` (a huge number, a far-future date) → `cap_s`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["DEFAULT_CAP_S", "parse_retry_after"]

DEFAULT_CAP_S = 3600.0
_DELTA = re.compile(r"\d{1,30}(?:\.\d{1,9})?")


def parse_retry_after(
    value: str | None, *, now: float | None = None, cap_s: float = DEFAULT_CAP_S
) -> float | None:
    """Seconds to wait, within [0, cap_s], or None when the header says nothing usable.
    `now` is the clock's Unix time (default: `time.time()`), used for HTTP-dates."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 100:
        return None
    if _DELTA.fullmatch(value):
        return min(cap_s, float(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = time.time() if now is None else now
    try:
        seconds = when.timestamp() - reference
    except (OverflowError, OSError, ValueError):
        return None
    return min(cap_s, max(0.0, seconds))
