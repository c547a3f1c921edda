"""The fleet: browsers, proxies, profiles, solvers, politeness and the ladder, owned as one.

The runtime takes a `Fleet` (`Runtime(…, fleet=Fleet(…))`), binds it to its
store when it starts (proxy burns and tier memory then live in the database,
shared by every worker) and closes it when it stops. Steps reach it through
their context: `await sc.browser()` and `await sc.fetch(url, …)`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from portwright.engines._politeness import Politeness
from portwright.engines.browser import (
    BrowserPool,
    EvidenceSink,
    JobArtifacts,
    LocalChromium,
    Masker,
    PoolConfig,
    StepBrowser,
)
from portwright.engines.ladder import Guard, Ladder, LadderConfig, StoreTierMemory, TierMemory
from portwright.resources import (
    BlobSealer,
    CaptchaSolver,
    ProfilePool,
    SolverChain,
    TwoCaptchaSolver,
)
from portwright.resources.proxies import MemoryBurnLedger, Proxy, ProxyPool, StoreBurnLedger
from portwright.resources.ssrf import UrlGuard, all_checks, refusing
from portwright.settings import Settings
from portwright.store import BlobStore, Store

__all__ = ["Fleet", "FleetConfig", "proxy_from_url"]


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Evidence defaults for browser steps, and the ladder's knobs."""

    trace: bool = True
    screenshots: bool = True
    ladder: LadderConfig = field(default_factory=LadderConfig)


def proxy_from_url(url: str) -> Proxy:
    """A `Proxy` for a bare proxy URL an identity provider handed out."""
    parts = urlsplit(url)
    server = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return Proxy(
        name=server,
        server=server,
        tier="custom",
        country="",
        provider="identity",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class Fleet:
    """Owns its pools; `aclose()` on their loop, or `close()` from another thread."""

    def __init__(
        self,
        *,
        browsers: BrowserPool | None = None,
        proxies: ProxyPool | None = None,
        captcha: CaptchaSolver | None = None,
        profiles: ProfilePool | None = None,
        politeness: Politeness | None = None,
        memory: TierMemory | None = None,
        guard: Guard | None = None,
        config: FleetConfig | None = None,
    ) -> None:
        self.browsers = browsers
        self.proxies = proxies
        self.captcha = captcha
        self.profiles = profiles
        self.politeness = politeness or Politeness()
        self.memory = memory
        self.guard = guard
        self.config = config or FleetConfig()
        self._ladder: Ladder | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        proxies: ProxyPool | None = None,
        captcha: CaptchaSolver | None = None,
        pool: PoolConfig | None = None,
        config: FleetConfig | None = None,
    ) -> Fleet:
        """The machine's Chromium (settings.chromium_path or autodetected), profiles under the
        data dir, the settings' 2captcha-compatible service (then an operator) as solver."""
        if captcha is None and settings.captcha_solver_url:
            key = settings.captcha_api_key.get_secret_value() if settings.captcha_api_key else ""
            guard = UrlGuard.from_allowlist(settings.url_allowlist)
            solver = TwoCaptchaSolver(settings.captcha_solver_url, key, guard=guard)
            captcha = SolverChain({"2captcha": solver})
        return cls(
            browsers=BrowserPool(
                LocalChromium(settings.chromium_path, remote_debugging=settings.browser_live_view),
                pool,
            ),
            proxies=proxies,
            captcha=captcha,
            profiles=ProfilePool(settings.data_dir / "profiles"),
            config=config,
        )

    def add_guard(self, guard: UrlGuard) -> None:
        """Run `guard` (the runtime's SSRF guard) on every request the ladder makes too,
        pinned to the addresses it checked."""
        self.guard = all_checks(refusing(guard), self.guard)
        self._ladder = None  # rebuilt with the guard on first use

    def bind(self, store: Store) -> None:
        """Share burns and tier memory with every worker on `store`'s database."""
        if self.proxies is not None and isinstance(self.proxies.ledger, MemoryBurnLedger):
            self.proxies.ledger = StoreBurnLedger(store)
        if self.memory is None:
            self.memory = StoreTierMemory(store)

    @property
    def ladder(self) -> Ladder:
        """The engine ladder over this fleet's pools (built on first use)."""
        self._touch()
        if self._ladder is None:
            self._ladder = Ladder(
                browsers=self.browsers,
                proxies=self.proxies,
                captcha=self.captcha,
                memory=self.memory,
                politeness=self.politeness,
                config=self.config.ladder,
                guard=self.guard,
            )
        return self._ladder

    def identity(self, job_id: str, portal: str, proxy_url: str | None) -> Proxy | None:
        """The job's proxy as a `Proxy` (with its country when the pool knows it)."""
        if proxy_url is None:
            return None
        if self.proxies is not None:
            for proxy in self.proxies.offered():
                if proxy.url == proxy_url:
                    return proxy
        return proxy_from_url(proxy_url)

    def step_browser(
        self,
        *,
        job_id: str,
        seed: str,
        proxy: Proxy | None,
        sink: EvidenceSink,
        blobs: BlobStore,
        prefix: str,
        masker: Callable[[], Masker],
        on_new_trace: Callable[[str, int], None] | None = None,
        sealer: BlobSealer | None = None,
    ) -> StepBrowser:
        """The browser side of one step attempt of `job_id`."""
        if self.browsers is None:
            raise RuntimeError("this fleet has no browser pool")
        self._touch()
        return StepBrowser(
            self.browsers,
            seed=seed,
            proxy=proxy,
            sink=sink,
            artifacts=JobArtifacts(blobs, prefix, on_new_trace=on_new_trace, sealer=sealer),
            masker=masker,
            profiles=self.profiles,
            trace=self.config.trace,
            screenshots=self.config.screenshots,
        )

    def _touch(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop = self._loop or asyncio.get_running_loop()

    async def aclose(self) -> None:
        if self._ladder is not None:
            await self._ladder.aclose()
            self._ladder = None
        if self.browsers is not None:
            await self.browsers.aclose()

    def close(self, timeout_s: float = 60.0) -> None:
        """Close from outside the fleet's loop (the runtime stopping)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            if self.browsers is not None:
                self.browsers.close(timeout_s)
            return
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout_s)
        else:
            loop.run_until_complete(self.aclose())
