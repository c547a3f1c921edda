"""The browser pool: a few browsers, each serving a bounded number of isolated contexts.

One context per job (or per fetch), with the job's proxy and a fingerprint
that agrees with the proxy's country. A browser is recycled after
`recycle_after_pages` pages (so memory stays bounded over long runs), closed
when idle for `idle_close_s`, and replaced when it crashes; a job whose
browser died gets a TransientError and resumes on a fresh context.

The pool belongs to the event loop that first used it (Playwright objects
cannot cross loops); `aclose()` there, or `close()` from any other thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from contextvars import Context
from dataclasses import dataclass, field
from typing import Any

import structlog
from playwright.async_api import Browser, Playwright, async_playwright

from portwright.engines.browser._fingerprint import Fingerprint, fingerprint_for
from portwright.engines.browser._lease import BrowserLease, StorageState
from portwright.engines.browser._procs import ProcessInfo, browser_processes
from portwright.engines.browser._providers import (
    HARDENING_SCRIPT,
    BrowserProvider,
    LocalChromium,
    is_remote,
)
from portwright.engines.browser._route_guard import GuardedIdentity
from portwright.engines.browser._shared import SessionContexts
from portwright.observability import track_browser_pool
from portwright.resources.proxies import Proxy
from portwright.sdk import TransientError

__all__ = ["BrowserPool", "PoolConfig", "PoolStats", "Slot"]

log = structlog.get_logger("portwright.browser")


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Bounds of a pool: browsers times contexts, recycling and idling."""

    max_browsers: int = 2
    contexts_per_browser: int = 4
    recycle_after_pages: int = 200
    idle_close_s: float = 60.0
    navigation_timeout_s: float = 30.0
    action_timeout_s: float = 15.0
    close_timeout_s: float = 10.0

    @property
    def capacity(self) -> int:
        return self.max_browsers * self.contexts_per_browser


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Counters since the pool started, and what is open now."""

    browsers: int
    contexts: int
    pages: int
    launched: int
    recycled: int
    crashed: int
    idle_closed: int


@dataclass(eq=False)
class Slot:
    id: int
    browser: Browser
    hardened: bool
    version: str
    pages: int = 0
    active: int = 0
    draining: bool = False
    dead: bool = False
    last_used: float = field(default_factory=time.monotonic)


class BrowserPool:
    """`async with pool.context(proxy=…, seed=job_id) as lease: page = await lease.new_page()`."""

    def __init__(
        self, provider: BrowserProvider | None = None, config: PoolConfig | None = None
    ) -> None:
        self.provider: BrowserProvider = provider or LocalChromium()
        self.config = config or PoolConfig()
        self._slots: list[Slot] = []
        self._ids = itertools.count(1)
        self._cond: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pw_manager: Any = None
        self._pw: Playwright | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._contexts = 0
        self._counts = {"pages": 0, "launched": 0, "recycled": 0, "crashed": 0, "idle": 0}
        self._closed = False
        self._sessions = SessionContexts()
        self.browser_version = ""

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> BrowserPool:
        """Start Playwright on the running loop (done lazily by the first lease)."""
        if self._closed:
            raise RuntimeError("browser pool is closed")
        if self._pw is not None:
            return self
        self._loop = asyncio.get_running_loop()
        self._cond = asyncio.Condition()
        self._pw_manager = async_playwright()
        # The pool outlives the job whose first lease starts it: Playwright's tasks (whose
        # callbacks log a crashed browser) and the reaper start in an empty context, so they
        # do not carry that job's log ids (structlog's contextvars).
        self._pw = await asyncio.create_task(self._pw_manager.start(), context=Context())
        self._reaper = asyncio.create_task(
            self._reap_idle(), name="browser-pool-reaper", context=Context()
        )
        track_browser_pool(self)  # portwright_browser_pool_size
        return self

    async def __aenter__(self) -> BrowserPool:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every browser and stop Playwright; leases still open fail."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await self._sessions.close_all(self)
        for slot in list(self._slots):
            await self._retire(slot)
        if self._pw_manager is not None:
            with contextlib.suppress(Exception):
                await self._pw_manager.__aexit__(None, None, None)
        self._pw_manager = None
        self._pw = None

    def close(self, timeout_s: float = 60.0) -> None:
        """Close from outside the pool's loop (e.g. a runtime stopping in another thread)."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._pw is None:
            self._closed = True
            return
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:
                raise RuntimeError("inside the pool's loop use `await pool.aclose()`")
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout_s)
        else:
            loop.run_until_complete(self.aclose())

    @property
    def playwright(self) -> Playwright:
        if self._pw is None:
            raise RuntimeError("browser pool not started")
        return self._pw

    # -- leasing -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def context(
        self,
        *,
        proxy: Proxy | GuardedIdentity | None = None,
        seed: str = "",
        country: str | None = None,
        fingerprint: Fingerprint | None = None,
        hardened: bool = False,
        storage_state: StorageState | None = None,
        trace: bool = False,
    ) -> AsyncIterator[BrowserLease]:
        """An isolated context on a pooled browser, closed (and its slot freed) on exit.

        With a `GuardedIdentity` the browser it lands on decides the way out: a local one
        goes through the loopback guard proxy, a remote one (CDP) through the identity's
        upstream with the route guard attached to the context."""
        await self.start()
        slot = await self._acquire_slot(hardened)
        lease: BrowserLease | None = None
        try:
            lease = await self._open_context(
                slot,
                proxy=proxy,
                seed=seed,
                country=country,
                fingerprint=fingerprint,
                hardened=hardened,
                storage_state=storage_state,
            )
            if trace:
                await lease.start_trace()
            yield lease
        finally:
            if lease is not None:
                await self._close_context(lease)
            await self._release_slot(slot)

    @contextlib.asynccontextmanager
    async def session_context(
        self, key: str, *, proxy: Proxy | None = None, hardened: bool = False
    ) -> AsyncIterator[BrowserLease]:
        """The context of session `key` (with this proxy and flavour), shared by its fetches.

        It keeps the session's cookies and storage between uses, saves a context and
        renderer start per page, and is closed when idle or when its browser recycles.
        Close the pages you open in it.
        """
        await self.start()
        async with self._sessions.use(self, key, proxy=proxy, hardened=hardened) as lease:
            yield lease

    async def _open_context(
        self,
        slot: Slot,
        *,
        proxy: Proxy | GuardedIdentity | None,
        seed: str,
        country: str | None = None,
        fingerprint: Fingerprint | None = None,
        hardened: bool,
        storage_state: StorageState | None = None,
    ) -> BrowserLease:
        guarded = proxy if isinstance(proxy, GuardedIdentity) else None
        remote = is_remote(slot.browser)
        way_out = guarded.for_browser(remote) if guarded is not None else proxy
        assert not isinstance(way_out, GuardedIdentity)
        fp = fingerprint or fingerprint_for(
            country or (way_out.country if way_out else None),
            seed=seed,
            browser_version=slot.version,
        )
        options: dict[str, Any] = dict(fp.context_options())
        if way_out is not None:
            options["proxy"] = way_out.for_playwright()
        if storage_state is not None:
            options["storage_state"] = storage_state
        context = await slot.browser.new_context(**options)
        self._contexts += 1
        if guarded is not None and remote:
            try:
                await guarded.route_guard.attach(context)
            except BaseException:
                self._contexts -= 1
                with contextlib.suppress(Exception):
                    await context.close()
                raise
        context.set_default_navigation_timeout(self.config.navigation_timeout_s * 1000)
        context.set_default_timeout(self.config.action_timeout_s * 1000)
        if hardened:
            await context.add_init_script(HARDENING_SCRIPT)
        context.on("page", lambda _page: self._page_opened(slot))
        return BrowserLease(context, fp, way_out, hardened=hardened, remote=remote)

    async def _close_context(self, lease: BrowserLease) -> None:
        self._contexts -= 1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(lease.context.close(), self.config.close_timeout_s)

    def stats(self) -> PoolStats:
        c = self._counts
        return PoolStats(
            browsers=sum(1 for s in self._slots if not s.dead),
            contexts=self._contexts,
            pages=c["pages"],
            launched=c["launched"],
            recycled=c["recycled"],
            crashed=c["crashed"],
            idle_closed=c["idle"],
        )

    def processes(self) -> list[ProcessInfo]:
        """The Chromium processes this process started (local browsers only)."""
        return browser_processes()

    # -- slots ---------------------------------------------------------------------------

    async def _acquire_slot(self, hardened: bool) -> Slot:
        assert self._cond is not None
        async with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("browser pool is closed")
                live = [s for s in self._slots if not s.dead]
                usable = [
                    s
                    for s in live
                    if s.hardened == hardened
                    and not s.draining
                    and s.active < self.config.contexts_per_browser
                ]
                if usable:
                    slot = min(usable, key=lambda s: s.active)
                    slot.active += 1
                    slot.last_used = time.monotonic()
                    return slot
                if len(live) < self.config.max_browsers:
                    slot = await self._launch(hardened)
                    slot.active += 1
                    return slot
                spare = next((s for s in live if s.active == 0), None)
                if spare is not None:
                    await self._retire(spare)
                    continue
                await self._cond.wait()

    async def _release_slot(self, slot: Slot) -> None:
        assert self._cond is not None
        async with self._cond:
            slot.active -= 1
            slot.last_used = time.monotonic()
            if not slot.draining and slot.pages >= self.config.recycle_after_pages:
                slot.draining = True
            if slot.active == 0 and (slot.draining or slot.dead):
                if slot.draining and not slot.dead:
                    self._counts["recycled"] += 1
                await self._retire(slot)
            self._cond.notify_all()

    async def _launch(self, hardened: bool) -> Slot:
        try:
            browser = await self.provider.launch(self.playwright, hardened=hardened)
        except Exception as exc:
            raise TransientError(
                f"{self.provider.name} browser could not start: {exc}", browser_launch=True
            ) from exc
        slot = Slot(next(self._ids), browser, hardened, browser.version)
        self.browser_version = browser.version
        browser.on("disconnected", lambda _b: self._disconnected(slot))
        self._slots.append(slot)
        self._counts["launched"] += 1
        log.debug("browser launched", slot=slot.id, hardened=hardened, provider=self.provider.name)
        return slot

    async def _retire(self, slot: Slot) -> None:
        if slot in self._slots:
            self._slots.remove(slot)
        if slot.dead:
            return
        slot.dead = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.provider.retire(slot.browser), self.config.close_timeout_s)

    def _disconnected(self, slot: Slot) -> None:
        if slot.dead:
            return
        slot.dead = True
        self._counts["crashed"] += 1
        log.warning("browser disconnected; it will be replaced", slot=slot.id)
        if slot in self._slots:
            self._slots.remove(slot)
        if self._cond is not None and self._loop is not None:
            self._loop.create_task(self._bury(slot))

    async def _bury(self, slot: Slot) -> None:
        """Give a crashed browser back to its provider (a remote one may need releasing)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.provider.retire(slot.browser), self.config.close_timeout_s)
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    def _page_opened(self, slot: Slot) -> None:
        slot.pages += 1
        self._counts["pages"] += 1

    async def _reap_idle(self) -> None:
        assert self._cond is not None
        period = max(0.5, min(self.config.idle_close_s / 2, 5.0))
        while True:
            await asyncio.sleep(period)
            await self._sessions.close_idle(self, self.config.idle_close_s)
            async with self._cond:
                now = time.monotonic()
                for slot in list(self._slots):
                    if slot.active == 0 and now - slot.last_used >= self.config.idle_close_s:
                        self._counts["idle"] += 1
                        await self._retire(slot)
