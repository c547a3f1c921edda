"""Process-wide instruments: events that happen inside a worker's job steps.

Captcha solves, identity burns and rotations happen in whatever process runs
the job, far from any app object, so they are counted here, in one registry
per process, and every app's `Metrics` registry includes it. The browser pool
gauge sums the pools this process has started (`track_browser_pool`).

An embedded stack (gateway and workers in one process) exposes them at
`/metrics`; a separate worker process counts them for its own exposition.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "PROCESS",
    "ProcessCounters",
    "track_browser_pool",
    "track_captcha_budget",
    "track_proxy_pool",
]


class _PoolStats(Protocol):
    @property
    def browsers(self) -> int: ...


class _Pool(Protocol):
    def stats(self) -> _PoolStats: ...


class _ProxyRow(Protocol):
    @property
    def provider(self) -> str: ...
    @property
    def cooling_until(self) -> float | None: ...
    @property
    def burned_for(self) -> tuple[str, ...]: ...


class _ProxyPool(Protocol):
    def status(self) -> Sequence[_ProxyRow]: ...
    def breaker_state(self, provider: str) -> str: ...


class _Budget(Protocol):
    def usage(self) -> Mapping[str, tuple[int, int]]: ...


_pools: weakref.WeakSet[_Pool] = weakref.WeakSet()
_proxy_pools: weakref.WeakSet[_ProxyPool] = weakref.WeakSet()
_budgets: weakref.WeakSet[_Budget] = weakref.WeakSet()
GLOBAL_SCOPE = "*"  # a proxy burned for every site (resources.proxies.GLOBAL)


def track_browser_pool(pool: _Pool) -> None:
    """Count `pool`'s live browsers in `portwright_browser_pool_size` while it exists."""
    _pools.add(pool)


def track_proxy_pool(pool: _ProxyPool) -> None:
    """Export `pool`'s identities (`portwright_proxy_pool_size`, `…_usable`) while it exists."""
    _proxy_pools.add(pool)


def track_captcha_budget(budget: _Budget) -> None:
    """Export `budget`'s spend per tenant (`portwright_captcha_budget_*`) while it exists."""
    _budgets.add(budget)


class _PoolCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "portwright_browser_pool_size", "Live browsers in this process's pools"
        )
        family.add_metric([], float(sum(p.stats().browsers for p in list(_pools))))
        yield family
        yield from self._proxies()
        yield from self._budgets()

    def _proxies(self) -> Iterable[Metric]:
        size: dict[str, int] = {}
        usable: dict[str, int] = {}
        for pool in list(_proxy_pools):
            for row in pool.status():
                size[row.provider] = size.get(row.provider, 0) + 1
                ok = (
                    row.cooling_until is None
                    and GLOBAL_SCOPE not in row.burned_for
                    and pool.breaker_state(row.provider) != "open"
                )
                usable[row.provider] = usable.get(row.provider, 0) + int(ok)
        total = GaugeMetricFamily(
            "portwright_proxy_pool_size",
            "Proxies the providers offer, per provider",
            labels=["provider"],
        )
        ready = GaugeMetricFamily(
            "portwright_proxy_pool_usable",
            "Proxies neither cooling, burned for every site, nor behind an open provider breaker",
            labels=["provider"],
        )
        for provider, count in sorted(size.items()):
            total.add_metric([provider], float(count))
            ready.add_metric([provider], float(usable[provider]))
        yield total
        yield ready

    def _budgets(self) -> Iterable[Metric]:
        spent = GaugeMetricFamily(
            "portwright_captcha_budget_spent",
            "Captcha solves spent this period, per tenant",
            labels=["tenant"],
        )
        limit = GaugeMetricFamily(
            "portwright_captcha_budget_limit",
            "Captcha solves allowed per period, per tenant",
            labels=["tenant"],
        )
        for budget in list(_budgets):
            for tenant, (used, cap) in sorted(budget.usage().items()):
                spent.add_metric([tenant], float(used))
                limit.add_metric([tenant], float(cap))
        yield spent
        yield limit


class ProcessCounters:
    """The counters a job step moves; `registry` is included in every app's registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.captchas = Counter(
            "portwright_captchas",
            "Captcha solves by portal and outcome (solved, failed)",
            ["portal", "outcome"],
            registry=r,
        )
        self.identity_burns = Counter(
            "portwright_identity_burns",
            "Identities (proxies) burned after a block, per portal",
            ["portal"],
            registry=r,
        )
        self.proxy_rotations = Counter(
            "portwright_proxy_rotations",
            "Rotations to a fresh identity after a block, per portal",
            ["portal"],
            registry=r,
        )
        self.ratelimit_fallbacks = Counter(
            "portwright_ratelimit_fallback",
            "Rate-limit answers from per-process counters because Redis was unreachable",
            registry=r,
        )
        self.ratelimit_redis_down = Gauge(
            "portwright_ratelimit_degraded",
            "1 while this process's rate limits are per-process (Redis unreachable)",
            registry=r,
        )
        self.blobs_held = Counter(
            "portwright_results_held_in_database",
            "Results (evidence) kept in the database because the blob store was down, by kind",
            ["kind"],
            registry=r,
        )
        self.blobs_moved = Counter(
            "portwright_results_moved_to_blob_store",
            "Results kept in the database, moved to the blob store once it was back",
            registry=r,
        )
        self.purged_rows = Counter(
            "portwright_retention_purged_rows",
            "Rows purged by retention, by data kind",
            ["kind"],
            registry=r,
        )
        self.purged_bytes = Counter(
            "portwright_retention_purged_bytes",
            "Bytes (stored results and payloads) purged by retention, by data kind",
            ["kind"],
            registry=r,
        )
        self.shadow_runs = Counter(
            "portwright_shadow_runs",
            "Read-only steps run by a shadow adapter version beside the live one, by portal, "
            "step and outcome (agree, differ, error, refused)",
            ["portal", "step", "outcome"],
            registry=r,
        )
        self.rollbacks = Counter(
            "portwright_rollout_rollbacks",
            "Canary adapter versions rolled back automatically, per portal",
            ["portal"],
            registry=r,
        )
        self.probes = Counter(
            "portwright_probes",
            "Synthetic probes of a portal's read-only steps, by portal and outcome",
            ["portal", "outcome"],
            registry=r,
        )
        r.register(_PoolCollector())

    def ratelimit_fallback(self) -> None:
        self.ratelimit_fallbacks.inc()

    def ratelimit_degraded(self, down: bool) -> None:
        self.ratelimit_redis_down.set(1 if down else 0)

    def blob_held(self, kind: str) -> None:
        self.blobs_held.labels(kind).inc()

    def purged(self, kind: str, rows: int, size: int) -> None:
        self.purged_rows.labels(kind).inc(rows)
        self.purged_bytes.labels(kind).inc(size)

    def captcha(self, portal: str, *, solved: bool) -> None:
        self.captchas.labels(portal, "solved" if solved else "failed").inc()

    def shadow(self, portal: str, step: str, outcome: str) -> None:
        self.shadow_runs.labels(portal, step, outcome).inc()

    def rolled_back(self, portal: str) -> None:
        self.rollbacks.labels(portal).inc()

    def probed(self, portal: str, outcome: str) -> None:
        self.probes.labels(portal, outcome).inc()

    def burned(self, portal: str, *, rotated: bool) -> None:
        """One identity burned; `rotated` when the job moved to another one."""
        self.identity_burns.labels(portal).inc()
        if rotated:
            self.proxy_rotations.labels(portal).inc()


PROCESS = ProcessCounters()
