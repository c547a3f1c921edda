"""Tier memory: which rung works on which site, shared by every worker through the database.

`choose_start` picks the cheapest rung worth trying: one never tried, one
that works (success rate above the threshold), or one whose last failure is
old enough to probe again; rungs known to fail are skipped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from portwright.engines.ladder._rungs import Rung
from portwright.store import TierStatRecord

if TYPE_CHECKING:
    from portwright.store import Store

__all__ = ["MemoryTierMemory", "StoreTierMemory", "TierMemory", "choose_start"]

DECAY = 0.95


class TierMemory(Protocol):
    """Per site and rung outcome counts."""

    async def stats(self, site: str) -> Mapping[str, TierStatRecord]: ...

    async def record(self, site: str, rung: str, *, ok: bool) -> None: ...


def choose_start(
    rungs: Sequence[Rung],
    stats: Mapping[str, TierStatRecord],
    *,
    threshold: float,
    reprobe_after_s: float,
    now: float | None = None,
) -> int:
    """Index of the rung a fetch of this site starts on."""
    now = time.time() if now is None else now
    for index, rung in enumerate(rungs):
        stat = stats.get(rung.name)
        if stat is None or stat.attempts <= 0:
            return index
        if stat.success_rate > threshold:
            return index
        if stat.last_fail_at is not None and now - stat.last_fail_at >= reprobe_after_s:
            return index
    return len(rungs) - 1


class MemoryTierMemory:
    """Tier memory of one process (tests, a ladder used without a database)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], TierStatRecord] = {}

    async def stats(self, site: str) -> Mapping[str, TierStatRecord]:
        with self._lock:
            return {rung: s for (s_site, rung), s in self._stats.items() if s_site == site}

    async def record(self, site: str, rung: str, *, ok: bool) -> None:
        now = time.time()
        with self._lock:
            old = self._stats.get((site, rung))
            wins = (old.successes * DECAY if old else 0.0) + (1.0 if ok else 0.0)
            losses = (old.failures * DECAY if old else 0.0) + (0.0 if ok else 1.0)
            self._stats[(site, rung)] = TierStatRecord(
                site=site,
                rung=rung,
                successes=wins,
                failures=losses,
                last_ok_at=now if ok else (old.last_ok_at if old else None),
                last_fail_at=(old.last_fail_at if old else None) if ok else now,
                updated_at=now,
            )


class StoreTierMemory:
    """Tier memory in the `tier_memory` table; reads cached for `cache_s` per site.

    A failure is written at once (it changes where the site starts). Successes are
    written at once too when the last write of that (site, rung) is older than
    `flush_s`; within that window they are counted and folded in by the next write of
    that pair (one UPDATE for many successes: the same decayed counts as one write
    each), so a worker fetching many pages of one site writes its memory a few times
    a second, not once a page. `flush()` writes what is pending.
    """

    def __init__(self, store: Store, *, cache_s: float = 2.0, flush_s: float = 1.0) -> None:
        self._store = store
        self.cache_s = cache_s
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, TierStatRecord]]] = {}
        self._pending: dict[tuple[str, str], int] = {}  # successes not written yet
        self._written: dict[tuple[str, str], float] = {}  # monotonic time of the last write

    async def stats(self, site: str) -> Mapping[str, TierStatRecord]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(site)
            if cached is not None and now - cached[0] < self.cache_s:
                return cached[1]
        rows = await asyncio.to_thread(self._store.fleet.tier_stats, site)
        stats = {row.rung: row for row in rows}
        with self._lock:
            self._cache[site] = (now, stats)
        return stats

    async def record(self, site: str, rung: str, *, ok: bool) -> None:
        key = (site, rung)
        now = time.monotonic()
        with self._lock:
            if ok:
                self._pending[key] = self._pending.get(key, 0) + 1
                last = self._written.get(key)
                if last is not None and now - last < self.flush_s:
                    return  # folded into this pair's next write
            successes = self._pending.pop(key, 0)
            self._written[key] = now
        await asyncio.to_thread(self._write, site, rung, successes, ok)
        if not ok:  # a failure changes where the site starts: read it afresh
            with self._lock:
                self._cache.pop(site, None)

    async def flush(self) -> None:
        """Write every pending success."""
        with self._lock:
            pending, self._pending = self._pending, {}
            now = time.monotonic()
            for key in pending:
                self._written[key] = now
        for (site, rung), successes in pending.items():
            await asyncio.to_thread(self._write, site, rung, successes, True)

    def _write(self, site: str, rung: str, successes: int, ok: bool) -> None:
        fleet = self._store.fleet
        if successes:  # the successes before this outcome, in order
            fleet.record_tier(site, rung, ok=True, decay=DECAY, count=successes)
        if not ok:
            fleet.record_tier(site, rung, ok=False, decay=DECAY)
