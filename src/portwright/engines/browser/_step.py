"""The browser side of one step attempt: a context on demand, evidence when the step ends.

`page()` opens a page in the step's context (created on first use, bound to
the job's proxy and fingerprint, restored from the job's browser state, or on
a persistent profile of a user). `aclose()` records every open page's
screenshot, DOM, URL and timings, appends the step's trace to the job's,
saves the browser state for the next step, and closes the context. A profile
that met a 403 from the portal is returned burned.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import structlog
from playwright.async_api import Page, Response

from portwright.engines.browser._artifacts import JobArtifacts
from portwright.engines.browser._evidence import EvidenceSink, Masker, capture_page, record_page
from portwright.engines.browser._lease import BrowserLease
from portwright.engines.browser._persistent import persistent_context
from portwright.engines.browser._pool import BrowserPool
from portwright.engines.browser._route_guard import GuardedIdentity
from portwright.resources import ProfileLease, ProfilePool
from portwright.resources.proxies import Proxy

__all__ = ["StepBrowser"]

log = structlog.get_logger("portwright.browser")


class StepBrowser:
    """Created per step attempt by the step context; `aclose()` must be awaited."""

    def __init__(
        self,
        pool: BrowserPool,
        *,
        seed: str,
        proxy: Proxy | GuardedIdentity | None,
        sink: EvidenceSink,
        artifacts: JobArtifacts | None = None,
        masker: Callable[[], Masker] = Masker,
        profiles: ProfilePool | None = None,
        trace: bool = True,
        screenshots: bool = True,
    ) -> None:
        self.pool = pool
        self.seed = seed
        self.proxy = proxy
        self.sink = sink
        self.artifacts = artifacts
        self.masker = masker
        self.profiles = profiles
        self.trace = trace
        self.screenshots = screenshots
        self._stack = contextlib.AsyncExitStack()
        self._lease: BrowserLease | None = None
        self._profile: ProfileLease | None = None
        self._blocked = False
        self._started = time.time()

    @property
    def lease(self) -> BrowserLease | None:
        return self._lease

    async def page(self, *, hardened: bool = False, profile: str | None = None) -> Page:
        """A new page in this step's context (opened on the first call)."""
        if self._lease is None:
            self._lease = await self._open(hardened=hardened, profile=profile)
        return await self._lease.new_page()

    async def _open(self, *, hardened: bool, profile: str | None) -> BrowserLease:
        if profile is not None:
            if self.profiles is None:
                raise RuntimeError("no profile pool is configured for persistent profiles")
            self._profile = self.profiles.acquire(profile)
            lease = await self._stack.enter_async_context(
                persistent_context(
                    self.pool,
                    self._profile,  # a profile opens in a local Chromium: the loopback guard
                    proxy=self.proxy.local
                    if isinstance(self.proxy, GuardedIdentity)
                    else self.proxy,
                    seed=self.seed,
                    hardened=hardened,
                    trace=self.trace,
                )
            )
        else:
            state = await self.artifacts.load_state() if self.artifacts else None
            lease = await self._stack.enter_async_context(
                self.pool.context(
                    proxy=self.proxy,
                    seed=self.seed,
                    hardened=hardened,
                    storage_state=state,
                    trace=self.trace,
                )
            )
        lease.context.on("response", self._watch)
        return lease

    def _watch(self, response: Response) -> None:
        with contextlib.suppress(Exception):
            if response.status == 403 and response.request.is_navigation_request():
                self._blocked = True

    async def aclose(self) -> list[str]:
        """Record evidence, keep the trace and state, close; returns the evidence ids."""
        ids: list[str] = []
        lease = self._lease
        try:
            if lease is not None:
                ids = await self._record(lease)
        finally:
            try:
                await self._stack.aclose()
            finally:
                if self._profile is not None and self.profiles is not None:
                    self.profiles.release(self._profile, burned=self._blocked)
                self._lease = None
        return ids

    async def _record(self, lease: BrowserLease) -> list[str]:
        masker = self.masker()
        ids: list[str] = []
        for index, page in enumerate(lease.pages):
            if page.is_closed():
                continue
            try:
                evidence = await capture_page(page, masker, screenshot=self.screenshots)
                ids += await record_page(
                    self.sink, evidence, step_started=self._started, page=index
                )
            except Exception as exc:  # noqa: BLE001 - evidence must never fail the step
                log.warning("could not record page evidence", error=repr(exc))
        chunk = await lease.stop_trace()
        if chunk and self.artifacts is not None:
            with contextlib.suppress(Exception):
                await self.artifacts.append_trace(chunk, masker)
        if self.artifacts is not None and self._profile is None:
            with contextlib.suppress(Exception):
                await self.artifacts.save_state(await lease.storage_state())
        return ids
