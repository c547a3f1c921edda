"""The composition root: the one place a process's runtime, resources and relay are built.

Every process builds here: `up` and `demo` (`portwright.cli.start_stack`), `api` and
`worker` (`platform_runtime`), the standalone relay (`build_relay`) and the tests'
runtime fixtures (`build_runtime`). The web app is `portwright.gateway.create_app` over
the runtime's `JobService`.

- `build_runtime(settings, registry, **parts)` — a `Runtime` (not started) over the parts
  given: the DBOS host plus the typed ports a job needs (store, registry, identities,
  secrets, blobs, fleet; see `portwright.orchestrator.JobPorts`). Parts not given get
  the runtime's defaults (direct identity, no secrets, the settings' blob store).
- `platform_runtime(settings)` — the configured platform, started: every installed
  adapter, the fleet the settings configure (browsers, proxies, captcha chain), the
  identities they assign, portal secrets from the vault.
- `build_relay(settings, store, vault)` — the outbox relay with its guarded client and
  the configured bus sinks.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from portwright.settings import Settings

if TYPE_CHECKING:
    from portwright.adapters import AdapterRegistry
    from portwright.delivery import Relay
    from portwright.engines import Fleet
    from portwright.orchestrator import Runtime
    from portwright.resources.vault import Vault
    from portwright.store import Store

__all__ = [
    "build_relay",
    "build_runtime",
    "configured_fleet",
    "has_chromium",
    "platform_registry",
    "platform_runtime",
]


def build_runtime(settings: Settings, registry: AdapterRegistry, **parts: Any) -> Runtime:
    """A runtime (not started) over `registry` and the given parts: `run_workers`,
    `blobs`, `identity`, `secrets`, `captcha`, `breaker_policy`, `fleet`, `guard`."""
    from portwright.orchestrator import Runtime

    return Runtime(settings, registry, **parts)


def configured_fleet(settings: Settings, captcha: Any = None, *, notice: bool = True) -> Fleet:
    """The fleet the settings configure (browsers, proxies, the captcha chain); `captcha`,
    a solver, replaces the configured chain. Without a Chromium: the HTTP tiers only."""
    from portwright.engines import ChromiumNotFoundError, Fleet
    from portwright.resources import SolverChain, proxy_pool_from, solver_chain_from
    from portwright.resources.ssrf import UrlGuard

    guard = UrlGuard.from_allowlist(settings.url_allowlist)
    proxies = proxy_pool_from(settings.proxies)
    solver: SolverChain | None = None
    if captcha is not None:
        solver = SolverChain({"captcha": captcha})
    else:
        solver = solver_chain_from(settings, guard)
    try:
        return Fleet.from_settings(settings, proxies=proxies, captcha=solver)
    except ChromiumNotFoundError as exc:  # HTTP tiers only; browser scrapes answer 422
        if notice:  # the demo says it its own way (what it skips)
            print(f"# {exc}: scrapes use the HTTP tiers only", file=sys.stderr)
        return Fleet(proxies=proxies, captcha=solver)


def platform_registry(settings: Settings, *, browsers: bool) -> AdapterRegistry:
    """Every installed adapter, the scrape adapter on the fleet behind the SSRF guard
    (its browser engines offered only where a Chromium is)."""
    from portwright.adapters import default_registry
    from portwright.adapters.scrape import ENGINES, ScrapeAdapter
    from portwright.resources.ssrf import UrlGuard

    registry = default_registry()
    engines = ENGINES if browsers else ("auto", "http")
    guard = UrlGuard.from_allowlist(settings.url_allowlist)
    registry.register(
        ScrapeAdapter.on_fleet(guard, engines=engines, inline_bytes=settings.result_inline_bytes)
    )
    return registry


def has_chromium(settings: Settings) -> bool:
    """Whether this process can have browsers: a remote one configured, or a Chromium here."""
    from portwright.engines import ChromiumNotFoundError, find_chromium

    if any(p.kind == "cdp" for p in settings.browsers.providers):
        return True
    try:
        find_chromium(settings.chromium_path)
    except ChromiumNotFoundError:
        return False
    return True


def platform_runtime(
    settings: Settings,
    *,
    captcha: Any = None,
    run_workers: bool = True,
    browser_notice: bool = True,
) -> tuple[Runtime, Vault]:
    """The runtime every platform process runs (`up`, `demo`, `worker`, `api`), started,
    and its vault: every adapter, the fleet for browser work, portal secrets from the
    vault. Without workers (a gateway only) no fleet: the registry validates input and
    workers elsewhere run the jobs."""
    from portwright.resources import identity_from
    from portwright.resources.vault import Vault

    vault = Vault.from_settings(settings)
    if run_workers:
        fleet = configured_fleet(settings, captcha, notice=browser_notice)
        registry = platform_registry(settings, browsers=fleet.browsers is not None)
        runtime = build_runtime(
            settings, registry, secrets=vault, captcha=captcha, fleet=fleet,
            identity=identity_from(settings, fleet.proxies),
        )  # fmt: skip
    else:
        registry = platform_registry(settings, browsers=has_chromium(settings))
        runtime = build_runtime(settings, registry, run_workers=False, secrets=vault)
    return runtime.start(), vault


def build_relay(
    settings: Settings,
    store: Store,
    sealer: Vault,
    *,
    poll_s: float = 0.5,
    lease_s: float = 30.0,
    batch: int = 100,
    timeout_s: float = 10.0,
) -> Relay:
    """The standalone outbox relay: bus sinks from the settings, then signed webhook
    deliveries through a client behind the SSRF guard (no redirects followed)."""
    from portwright.delivery import DeliveryPolicy, Relay, sinks_from
    from portwright.resources.ssrf import UrlGuard, guarded_client

    guard = UrlGuard.from_allowlist(settings.url_allowlist)
    return Relay(
        store,
        client=guarded_client(guard, timeout=timeout_s, max_redirects=0),
        policy=DeliveryPolicy(timeout_s=timeout_s),
        sinks=sinks_from(settings),
        batch=batch,
        poll_s=poll_s,
        lease_s=lease_s,
        sealer=sealer,
    )
