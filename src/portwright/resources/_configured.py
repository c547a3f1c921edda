"""Resources built from the settings: the proxy pool, the captcha chain, identity routing.

Everything a user configures (`portwright.toml` / `PORTWRIGHT_*`, see
docs/configuration.md) becomes the same library objects the tests use: a `ProxyPool`
over `StaticProxyList`s and `RotatingGateway`s, a `SolverChain` over clients by API
style, and an `IdentityRouter` telling each adapter's jobs which identity to use. The
sandbox world is one such configuration (`portwright up` builds it as settings).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from portwright.resources._breaker import BreakerConfig
from portwright.resources._captcha import TwoCaptchaSolver
from portwright.resources._captcha_tasks import CreateTaskSolver
from portwright.resources._solvers import CaptchaBudget, SolverChain
from portwright.resources.proxies import (
    DEFAULT_TIERS,
    PoolExhaustedError,
    Proxy,
    ProxyPool,
    ProxyProvider,
    RotatingGateway,
    StaticProxyList,
    Tier,
)
from portwright.resources.ssrf import UrlGuard
from portwright.settings import (
    CaptchaProviderConfig,
    IdentitiesConfig,
    ProviderBreakerConfig,
    ProxiesConfig,
    Settings,
    SettingsError,
)

__all__ = [
    "IdentityRoute",
    "IdentityRouter",
    "breaker_config",
    "identity_from",
    "proxy_pool_from",
    "solver_chain_from",
    "solver_from",
]


def breaker_config(config: ProviderBreakerConfig) -> BreakerConfig:
    return BreakerConfig(
        window_s=config.window_s,
        min_calls=config.min_calls,
        failure_rate=config.failure_rate,
        open_s=config.open_s,
    )


def _providers(config: ProxiesConfig) -> list[ProxyProvider]:
    providers: list[ProxyProvider] = []
    for plist in config.lists:
        proxies = []
        for i, entry in enumerate(plist.proxies, start=1):
            password = entry.password or plist.password
            proxies.append(
                Proxy(
                    name=entry.name or f"{plist.name}-{i}",
                    server=entry.server,
                    tier=entry.tier or plist.tier,
                    country=entry.country or plist.country or "",
                    provider=plist.name,
                    username=entry.username or plist.username,
                    password=password.get_secret_value() if password is not None else None,
                )
            )
        providers.append(StaticProxyList(plist.name, proxies))
    providers.extend(
        RotatingGateway(
            gateway.name,
            gateway.server,
            user=gateway.username,
            password=gateway.password.get_secret_value(),
            tier=gateway.tier,
            countries=[c for c in gateway.countries if c],
            slots=gateway.slots,
            max_sessions=gateway.max_sessions,
            username_template=gateway.username_template,
        )
        for gateway in config.gateways
    )
    return providers


def proxy_pool_from(config: ProxiesConfig) -> ProxyPool | None:
    """The proxy pool the settings describe; None when no proxy is configured."""
    if not config.configured:
        return None
    tiers = dict(DEFAULT_TIERS)
    for name, tier in config.tiers.items():
        tiers[name] = Tier(name, tier.rank, tier.cost)
    return ProxyPool(_providers(config), tiers=tiers, breaker=breaker_config(config.breaker))


def solver_from(
    provider: CaptchaProviderConfig, guard: UrlGuard | None
) -> TwoCaptchaSolver | CreateTaskSolver:
    """The client for one configured captcha provider, by its API style."""
    key = provider.api_key.get_secret_value()
    if provider.style == "2captcha":
        return TwoCaptchaSolver(
            provider.url,
            key,
            poll_s=provider.poll_s,
            timeout_s=provider.timeout_s,
            method=provider.task_type or "userrecaptcha",
            guard=guard,
        )
    return CreateTaskSolver(
        provider.url,
        key,
        poll_s=provider.poll_s,
        timeout_s=provider.timeout_s,
        task_type=provider.task_type or "RecaptchaV2TaskProxyless",
        guard=guard,
    )


def solver_chain_from(settings: Settings, guard: UrlGuard | None) -> SolverChain | None:
    """The captcha chain the settings describe (providers in order, then an operator);
    None when no provider is configured."""
    providers = settings.captcha_providers()
    if not providers:
        return None
    budget = settings.captcha.budget
    return SolverChain(
        {p.name: solver_from(p, guard) for p in providers},
        budget=None
        if budget is None
        else CaptchaBudget(budget.limit, period_s=budget.period_s, per_tenant=budget.tenants),
        breaker=breaker_config(settings.captcha.breaker),
        breakers={p.name: breaker_config(p.breaker) for p in providers if p.breaker is not None},
    )


@dataclass(frozen=True, slots=True)
class IdentityRoute:
    """Proxies of `tier` (any when None) in `country` (any when None)."""

    pool: str
    tier: str | None = None
    country: str | None = None


class IdentityRouter:
    """The orchestrator's `IdentityProvider`, by adapter: a direct connection, or a sticky
    proxy per job from the pool's selection the adapter is routed to.

    When the selection is exhausted the job keeps its last proxy (never falls back to a
    direct connection) and `rotate` answers False: the orchestrator escalates.
    """

    _REMEMBERED = 10_000

    def __init__(
        self,
        pool: ProxyPool | None,
        routes: Mapping[str, IdentityRoute | None],
        default: IdentityRoute | None = None,
    ) -> None:
        wanted = [r for r in (default, *routes.values()) if r is not None]
        if wanted and pool is None:
            raise SettingsError(
                f"identities: pool {wanted[0].pool!r} needs proxies, and none are configured "
                "(proxies.lists or proxies.gateways)"
            )
        self.pool = pool
        self.routes = dict(routes)
        self.default = default
        self._lock = threading.Lock()
        self._last: OrderedDict[str, Proxy] = OrderedDict()

    def route(self, portal: str) -> IdentityRoute | None:
        return self.routes.get(portal, self.default)

    def _acquire(self, route: IdentityRoute, job_id: str, portal: str) -> Proxy:
        assert self.pool is not None
        proxy = self.pool.acquire(
            site=portal, tier=route.tier, country=route.country, session=f"job:{job_id}"
        )
        with self._lock:
            self._last[job_id] = proxy
            self._last.move_to_end(job_id)
            while len(self._last) > self._REMEMBERED:
                self._last.popitem(last=False)
        return proxy

    def proxy_for(self, job_id: str, portal: str) -> str | None:
        route = self.route(portal)
        if route is None or self.pool is None:
            return None
        try:
            return self._acquire(route, job_id, portal).url
        except PoolExhaustedError:
            with self._lock:
                held = self._last.get(job_id)
            if held is not None:
                return held.url
            offered = [
                p
                for p in self.pool.offered()
                if (route.tier is None or p.tier == route.tier)
                and (route.country is None or p.country.upper() == route.country)
            ]
            if not offered:
                raise
            return offered[0].url  # fail closed: a burned proxy, not the machine's address

    def rotate(self, job_id: str, portal: str, reason: str) -> bool:
        route = self.route(portal)
        if route is None or self.pool is None:
            return False
        with self._lock:
            held = self._last.get(job_id)
        if held is not None:
            self.pool.burn(held, site=portal, reason=reason)
        try:
            self._acquire(route, job_id, portal)
        except PoolExhaustedError:
            return False
        return True


def identity_from(settings: Settings, pool: ProxyPool | None) -> IdentityRouter:
    """The identity routing of `settings.identities` over `pool`."""
    config: IdentitiesConfig = settings.identities

    def route(name: str) -> IdentityRoute | None:
        if name == "direct":
            return None
        if name == "proxies":
            return IdentityRoute("proxies")
        selection = config.pools[name]
        return IdentityRoute(name, selection.tier, selection.country)

    return IdentityRouter(
        pool,
        {adapter: route(name) for adapter, name in config.adapters.items()},
        route(config.default),
    )
