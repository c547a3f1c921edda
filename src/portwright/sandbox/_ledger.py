"""The ledger every sandbox portal keeps: what was booked, submitted, applied or synced."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Ledger", "LedgerEntry"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One effect a portal performed: `kind` (e.g. "booking"), `key` (what must be unique)."""

    seq: int
    kind: str
    key: str
    actor: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    """Append-only, thread-safe record of effects; tests read it to prove exactly-once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LedgerEntry] = []

    def record(self, kind: str, key: str, actor: str, **data: Any) -> LedgerEntry:
        with self._lock:
            entry = LedgerEntry(len(self._entries) + 1, kind, key, actor, time.time(), data)
            self._entries.append(entry)
            return entry

    def entries(self, kind: str | None = None) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self._entries if kind is None or e.kind == kind]

    def count(self, kind: str, key: str) -> int:
        return sum(1 for e in self.entries(kind) if e.key == key)

    def duplicates(self, kind: str) -> dict[str, int]:
        """Keys of `kind` recorded more than once, with their counts."""
        counts = Counter(e.key for e in self.entries(kind))
        return {k: n for k, n in counts.items() if n > 1}
