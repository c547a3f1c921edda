"""Where burns are kept: in memory for one process, or in the database for every worker."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from portwright.store import Store

__all__ = ["Burn", "BurnLedger", "MemoryBurnLedger", "StoreBurnLedger"]


@dataclass(frozen=True, slots=True)
class Burn:
    """`proxy` may not be used for `scope` (a site, or "*" for all) until `until` (None: ever)."""

    proxy: str
    scope: str
    reason: str
    until: float | None

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now


class BurnLedger(Protocol):
    """Persists burns so that every worker stops using a banned identity."""

    def burn(self, burn: Burn) -> None: ...

    def active(self) -> list[Burn]: ...


class MemoryBurnLedger:
    """Burns in a dict: one process only (tests, the embedded single-process mode)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._burns: dict[tuple[str, str], Burn] = {}

    def burn(self, burn: Burn) -> None:
        with self._lock:
            self._burns[(burn.proxy, burn.scope)] = burn

    def active(self) -> list[Burn]:
        now = time.time()
        with self._lock:
            return [b for b in self._burns.values() if b.active(now)]


class StoreBurnLedger:
    """Burns in the `proxy_burns` table, shared by every worker on the same database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def burn(self, burn: Burn) -> None:
        self._store.fleet.burn(burn.proxy, burn.scope, reason=burn.reason, until=burn.until)

    def active(self) -> list[Burn]:
        return [
            Burn(row.proxy, row.scope, row.reason, row.until)
            for row in self._store.fleet.active_burns()
        ]
