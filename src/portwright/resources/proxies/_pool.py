"""The proxy pool: tiers, health, cooldown, burns, sticky sessions, country, provider breakers.

`acquire()` hands out an identity for a site, honouring the tier and country
asked for and a sticky session (the same proxy for a session until it fails);
`succeeded()` / `failed()` feed health and the provider's circuit breaker;
`burn()` records a ban (shared with every worker through a `BurnLedger`) and
the provider may mint a replacement. When no identity is left the pool raises
`PoolExhaustedError`, a `BlockedError`: the orchestrator escalates to an
operator instead of looping.

It is also the orchestrator's `IdentityProvider` (`proxy_for` / `rotate`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from portwright.observability import track_proxy_pool
from portwright.resources._breaker import BreakerConfig, CircuitBreaker
from portwright.resources.proxies._burns import Burn, BurnLedger, MemoryBurnLedger
from portwright.resources.proxies._health import HealthPolicy, ProxyHealth
from portwright.resources.proxies._model import DEFAULT_TIERS, Proxy, Tier
from portwright.resources.proxies._providers import ProxyProvider
from portwright.sdk import BlockedError

__all__ = ["GLOBAL", "PoolExhaustedError", "ProxyPool", "ProxyStatus"]

GLOBAL = "*"


class PoolExhaustedError(BlockedError):
    """No usable proxy is left for this site, tier and country: a person must decide."""


@dataclass(frozen=True, slots=True)
class ProxyStatus:
    """One proxy as an operator sees it."""

    name: str
    provider: str
    tier: str
    country: str
    success_rate: float
    latency_s: float | None
    failures: int
    cooling_until: float | None
    burned_for: tuple[str, ...]


class ProxyPool:
    """Thread-safe; every method is quick (the ledger is re-read at most every `refresh_s`)."""

    def __init__(
        self,
        providers: Sequence[ProxyProvider],
        *,
        tiers: Mapping[str, Tier] = DEFAULT_TIERS,
        ledger: BurnLedger | None = None,
        health: HealthPolicy | None = None,
        breaker: BreakerConfig | None = None,
        identity_tier: str | None = None,
        sticky_ttl_s: float = 1800.0,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.providers = list(providers)
        self.tiers = dict(tiers)
        self.ledger: BurnLedger = ledger or MemoryBurnLedger()
        self.policy = health or HealthPolicy()
        self.identity_tier = identity_tier
        self.sticky_ttl_s = sticky_ttl_s
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers = {p.name: CircuitBreaker(p.name, breaker) for p in self.providers}
        self._health: dict[str, ProxyHealth] = {}
        self._burned: dict[tuple[str, str], float | None] = {}
        self._refreshed_at = float("-inf")
        self._sticky: dict[str, tuple[Proxy, float]] = {}
        self._cursor: dict[tuple[str | None, str | None], int] = {}
        self._exhausted: set[str] = set()
        # Told (kind, title, detail) when no usable proxy is left for a request: the
        # runtime turns it into a staff alert. Called under the pool's lock: must not block.
        self.on_alert: Callable[[str, str, str], None] | None = None
        track_proxy_pool(self)  # portwright_proxy_pool_size / _usable

    # -- handing out identities ---------------------------------------------------------

    def _alert_empty(self, site: str, tier: str | None, country: str | None) -> None:
        hook = self.on_alert
        if hook is None:
            return
        hook(
            "proxy_pool_empty",
            "proxy pool empty",
            f"No usable proxy left for {site} (tier {tier or 'any'}, country "
            f"{country or 'any'}): {len(self.offered())} offered, all burned, open or "
            "unhealthy. Jobs needing one are blocked until the pool refills.",
        )

    def acquire(
        self,
        *,
        site: str,
        tier: str | None = None,
        country: str | None = None,
        session: str | None = None,
    ) -> Proxy:
        """A usable proxy for `site`; the session's sticky one while it stays usable."""
        if tier is not None and tier not in self.tiers:
            raise ValueError(f"unknown proxy tier {tier!r}; known: {', '.join(self.tiers)}")
        wanted_country = country.upper() if country else None
        self._refresh()
        now = self._clock()
        with self._lock:
            if session is not None:
                held = self._sticky.get(session)
                if held is not None and held[1] > now:
                    proxy = held[0]
                    fits = self._matches(proxy, tier, wanted_country)
                    if fits and self._usable(proxy, site, now):
                        self._sticky[session] = (proxy, now + self.sticky_ttl_s)
                        return proxy
            candidates = [
                p
                for p in self.offered()
                if self._matches(p, tier, wanted_country) and self._usable(p, site, now)
            ]
            if not candidates:
                self._alert_empty(site, tier, wanted_country)
                raise PoolExhaustedError(
                    f"no usable proxy left for {site}"
                    f" (tier {tier or 'any'}, country {wanted_country or 'any'})",
                    pool_exhausted=True,
                    site=site,
                    tier=tier,
                    country=wanted_country,
                )
            best_rank = min(self.tiers[p.tier].rank for p in candidates)
            candidates = [p for p in candidates if self.tiers[p.tier].rank == best_rank]
            key = (tier, wanted_country)
            index = self._cursor.get(key, 0)
            self._cursor[key] = index + 1
            proxy = candidates[index % len(candidates)]
            if session is not None:
                self._sticky[session] = (proxy, now + self.sticky_ttl_s)
            return proxy

    def release(self, session: str) -> None:
        """Forget a session's sticky proxy."""
        with self._lock:
            self._sticky.pop(session, None)

    def mark_exhausted(self, session: str) -> None:
        """A fetch for `session` found no identity left: its next `rotate` answers False."""
        with self._lock:
            self._exhausted.add(session)

    def cost(self, proxy: Proxy | None) -> float:
        """Credits per request through `proxy` (0 for a direct connection)."""
        return 0.0 if proxy is None else self.tiers[proxy.tier].cost

    def has_tier(self, tier: str) -> bool:
        return any(p.tier == tier for p in self.offered())

    # -- outcomes -------------------------------------------------------------------------

    def succeeded(self, proxy: Proxy, *, latency_s: float | None = None) -> None:
        with self._lock:
            self._health_of(proxy).succeeded(self.policy, latency_s)
        self._breaker(proxy).record(ok=True)

    def failed(self, proxy: Proxy) -> None:
        """The proxy itself failed (refused, unreachable, 5xx of its own): cool it down."""
        with self._lock:
            self._health_of(proxy).failed(self.policy, self._clock())
        self._breaker(proxy).record(ok=False)

    def burn(
        self,
        proxy: Proxy,
        *,
        site: str,
        reason: str,
        ttl_s: float | None = None,
        forever: bool = False,
    ) -> Proxy | None:
        """`site` banned `proxy`: keep it out of that site; returns the provider's replacement.

        The burn lasts `ttl_s` (default: the health policy's `burn_ttl_s`) or, with
        `forever`, for good; a site of "*" burns the proxy everywhere.
        """
        ttl = None if forever else (ttl_s if ttl_s is not None else self.policy.burn_ttl_s)
        until = None if ttl is None else self._clock() + ttl
        burn = Burn(proxy.name, site, reason, until)
        with self._lock:
            self._burned[(proxy.name, site)] = until
            for session, (held, expires) in list(self._sticky.items()):
                if held.name == proxy.name:
                    self._sticky[session] = (held, min(expires, self._clock()))
        self.ledger.burn(burn)
        provider = next((p for p in self.providers if p.name == proxy.provider), None)
        return None if provider is None else provider.replace(proxy)

    # -- the orchestrator's IdentityProvider ---------------------------------------------

    def proxy_for(self, job_id: str, portal: str) -> str | None:
        """The job's sticky proxy URL; when none is usable, the last one (fail closed)."""
        if not self.providers:
            return None
        try:
            proxy = self.acquire(site=portal, tier=self.identity_tier, session=f"job:{job_id}")
        except PoolExhaustedError:
            with self._lock:
                held = self._sticky.get(f"job:{job_id}")
            offered = self.offered()
            fallback = held[0] if held else (offered[0] if offered else None)
            return None if fallback is None else fallback.url
        return proxy.url

    def rotate(self, job_id: str, portal: str, reason: str) -> bool:
        """Burn the job's proxy for the portal and move on; False when none is left."""
        session = f"job:{job_id}"
        with self._lock:
            held = self._sticky.get(session)
            if session in self._exhausted:
                self._exhausted.discard(session)
                return False
        if held is not None:
            self.burn(held[0], site=portal, reason=reason)
        try:
            self.acquire(site=portal, tier=self.identity_tier, session=session)
        except PoolExhaustedError:
            return False
        return True

    # -- inspection -----------------------------------------------------------------------

    def status(self) -> list[ProxyStatus]:
        self._refresh()
        now = self._clock()
        with self._lock:
            rows = []
            for proxy in self.offered():
                health = self._health.get(proxy.name) or ProxyHealth()
                burned = tuple(
                    sorted(
                        scope
                        for (name, scope), until in self._burned.items()
                        if name == proxy.name and (until is None or until > now)
                    )
                )
                rows.append(
                    ProxyStatus(
                        name=proxy.name,
                        provider=proxy.provider,
                        tier=proxy.tier,
                        country=proxy.country,
                        success_rate=round(health.success_rate, 3),
                        latency_s=health.latency_s,
                        failures=health.failures,
                        cooling_until=health.cooldown_until if health.cooling(now) else None,
                        burned_for=burned,
                    )
                )
            return rows

    def breaker_state(self, provider: str) -> str:
        return self._breakers[provider].state

    # -- internals ------------------------------------------------------------------------

    def offered(self) -> list[Proxy]:
        """Every identity the providers offer now (usable or not)."""
        return [proxy for provider in self.providers for proxy in provider.proxies()]

    def _matches(self, proxy: Proxy, tier: str | None, country: str | None) -> bool:
        return (tier is None or proxy.tier == tier) and (
            country is None or proxy.country.upper() == country
        )

    def _usable(self, proxy: Proxy, site: str, now: float) -> bool:
        for scope in (site, GLOBAL):
            until = self._burned.get((proxy.name, scope), 0.0)
            if until is None or until > now:
                return False
        health = self._health.get(proxy.name)
        if health is not None and health.cooling(now):
            return False
        breaker = self._breakers.get(proxy.provider)
        return breaker is None or breaker.available()

    def _health_of(self, proxy: Proxy) -> ProxyHealth:
        health = self._health.get(proxy.name)
        if health is None:
            health = self._health[proxy.name] = ProxyHealth()
        return health

    def _breaker(self, proxy: Proxy) -> CircuitBreaker:
        breaker = self._breakers.get(proxy.provider)
        if breaker is None:
            breaker = self._breakers[proxy.provider] = CircuitBreaker(proxy.provider)
        return breaker

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._refreshed_at < self.refresh_s:
            return
        self._refreshed_at = now
        burns = self.ledger.active()
        with self._lock:  # the ledger is the truth: lifted burns (an operator's unburn) go too
            self._burned = {(burn.proxy, burn.scope): burn.until for burn in burns}
