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

import structlog

from portwright.engines._politeness import Politeness
from portwright.engines._politeness import warm as warm_robots
from portwright.engines.browser import (
    BrowserPool,
    BrowserProvider,
    BrowserProviderChain,
    ChainedProvider,
    EvidenceSink,
    GuardedIdentity,
    JobArtifacts,
    LocalChromium,
    Masker,
    PoolConfig,
    RemoteCdp,
    StepBrowser,
)
from portwright.engines.ladder import (
    Guard,
    Ladder,
    LadderConfig,
    StoreTierMemory,
    TierMemory,
)
from portwright.engines.ladder import warm as warm_http_rungs
from portwright.resources import (
    BlobSealer,
    CaptchaSolver,
    ProfilePool,
    proxy_pool_from,
    solver_chain_from,
)
from portwright.resources.proxies import MemoryBurnLedger, Proxy, ProxyPool, StoreBurnLedger
from portwright.resources.ssrf import UrlGuard, all_checks, refusing
from portwright.settings import BrowserProviderConfig, Settings
from portwright.store import BlobStore, Store

__all__ = ["Fleet", "FleetConfig", "browser_pool_from", "browser_provider_from", "proxy_from_url"]


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


def browser_provider_from(settings: Settings, config: BrowserProviderConfig) -> BrowserProvider:
    """One configured browser provider: the local Chromium (ChromiumNotFoundError when it is
    not there) or a remote browser over CDP."""
    if config.kind == "local":
        return LocalChromium(
            config.chromium_path or settings.chromium_path,
            remote_debugging=settings.browser_live_view,
        )
    headers = {name: value.get_secret_value() for name, value in config.headers.items()}
    return RemoteCdp(
        config.endpoint(), headers=headers, name=config.name, timeout_s=config.timeout_s
    )


def browser_pool_from(settings: Settings, pool: PoolConfig | None = None) -> BrowserPool:
    """The browser pool over `browsers.providers` in order (one provider: itself; several:
    a chain, each at its concurrency); none configured: the machine's Chromium."""
    configured = settings.browsers.providers
    if not configured:
        local = LocalChromium(settings.chromium_path, remote_debugging=settings.browser_live_view)
        return BrowserPool(local, pool)
    chain = BrowserProviderChain(
        [ChainedProvider(browser_provider_from(settings, c), c.concurrency) for c in configured]
    )
    sized = pool or PoolConfig(
        max_browsers=chain.capacity, contexts_per_browser=settings.browsers.contexts_per_browser
    )
    if len(configured) == 1 and configured[0].kind == "local":
        return BrowserPool(chain.providers[0].provider, sized)  # persistent profiles need it bare
    return BrowserPool(chain, sized)


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
        """The fleet the settings configure (docs/configuration.md): browsers from
        `browsers.providers` (default: the machine's Chromium, settings.chromium_path or
        autodetected), proxies from `proxies`, the `captcha` chain (then an operator),
        profiles under the data dir. Arguments given replace what the settings say."""
        guard = UrlGuard.from_allowlist(settings.url_allowlist)
        if proxies is None:
            proxies = proxy_pool_from(settings.proxies)
        if captcha is None:
            captcha = solver_chain_from(settings, guard)
        return cls(
            browsers=browser_pool_from(settings, pool),
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
        proxy: Proxy | GuardedIdentity | None,
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

    def warm(self) -> None:
        """Import and build, once, what the first fetch would (the HTTP rungs' client
        library, the HTML parser), so a worker pays for it when it starts, not on its
        event loop in the middle of its first batch. Never fails: a fetch would load the
        same and say what is missing."""
        try:
            warm_http_rungs()
            warm_robots()
        except Exception:  # noqa: BLE001 - an optimisation; the first fetch reports the cause
            structlog.get_logger("portwright.fleet").warning(
                "could not preload the HTTP engine", exc_info=True
            )

    def _touch(self) -> None:
        if self._loop is not None:  # asked on every fetch: the loop is known after the first
            return
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()

    async def aclose(self) -> None:
        if isinstance(self.memory, StoreTierMemory):
            try:
                await self.memory.flush()  # the successes not written yet
            except Exception:  # noqa: BLE001 - a heuristic's last second; close the rest
                structlog.get_logger("portwright.fleet").warning(
                    "could not write the pending tier memory", exc_info=True
                )
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
