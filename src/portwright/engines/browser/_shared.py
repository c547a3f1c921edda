"""Session contexts: one browser context per session key, shared by that session's fetches.

A session (the scrape API's `session_id`) wants its cookies kept anyway, so
its fetches share one context instead of paying a context and a renderer
start each. The context holds a slot of the pool for as long as it lives;
it is closed when idle, when its browser drains for recycling, or when the
browser dies (the next use opens a fresh one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from portwright.engines.browser._lease import BrowserLease
from portwright.resources.proxies import Proxy

if TYPE_CHECKING:
    from portwright.engines.browser._pool import BrowserPool, Slot

__all__ = ["SessionContexts"]


@dataclass(eq=False)
class _Shared:
    slot: Slot
    lease: BrowserLease
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    retired: bool = False


class SessionContexts:
    """The pool's session contexts, by (key, proxy, flavour)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str | None, bool], _Shared] = {}
        self._locks: dict[tuple[str, str | None, bool], asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def use(
        self, pool: BrowserPool, key: str, *, proxy: Proxy | None, hardened: bool
    ) -> AsyncIterator[BrowserLease]:
        ident = (key, None if proxy is None else proxy.name, hardened)
        lock = self._locks.setdefault(ident, asyncio.Lock())
        async with lock:
            entry = self._entries.get(ident)
            if entry is not None and (entry.slot.dead or entry.slot.draining):
                await self._retire(pool, ident, entry)
                entry = None
            if entry is None:
                slot = await pool._acquire_slot(hardened)
                try:
                    lease = await pool._open_context(slot, proxy=proxy, seed=key, hardened=hardened)
                except BaseException:
                    await pool._release_slot(slot)
                    raise
                entry = self._entries[ident] = _Shared(slot, lease)
            entry.users += 1
        try:
            yield entry.lease
        finally:
            entry.users -= 1
            entry.last_used = time.monotonic()
            if entry.users == 0 and (entry.slot.dead or entry.slot.draining):
                await self._retire(pool, ident, entry)

    async def close_idle(self, pool: BrowserPool, idle_s: float) -> None:
        now = time.monotonic()
        for ident, entry in list(self._entries.items()):
            if entry.users == 0 and now - entry.last_used >= idle_s:
                await self._retire(pool, ident, entry)
        for ident, lock in list(self._locks.items()):
            if ident not in self._entries and not lock.locked():
                del self._locks[ident]

    async def close_all(self, pool: BrowserPool) -> None:
        for ident, entry in list(self._entries.items()):
            await self._retire(pool, ident, entry)

    async def _retire(
        self, pool: BrowserPool, ident: tuple[str, str | None, bool], entry: _Shared
    ) -> None:
        if entry.retired:
            return
        entry.retired = True
        if self._entries.get(ident) is entry:
            del self._entries[ident]
        await pool._close_context(entry.lease)
        await pool._release_slot(entry.slot)
