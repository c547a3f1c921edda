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
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["PROCESS", "ProcessCounters", "track_browser_pool"]


class _PoolStats(Protocol):
    @property
    def browsers(self) -> int: ...


class _Pool(Protocol):
    def stats(self) -> _PoolStats: ...


_pools: weakref.WeakSet[_Pool] = weakref.WeakSet()


def track_browser_pool(pool: _Pool) -> None:
    """Count `pool`'s live browsers in `portwright_browser_pool_size` while it exists."""
    _pools.add(pool)


class _PoolCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "portwright_browser_pool_size", "Live browsers in this process's pools"
        )
        family.add_metric([], float(sum(p.stats().browsers for p in list(_pools))))
        yield family


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
        r.register(_PoolCollector())

    def captcha(self, portal: str, *, solved: bool) -> None:
        self.captchas.labels(portal, "solved" if solved else "failed").inc()

    def burned(self, portal: str, *, rotated: bool) -> None:
        """One identity burned; `rotated` when the job moved to another one."""
        self.identity_burns.labels(portal).inc()
        if rotated:
            self.proxy_rotations.labels(portal).inc()


PROCESS = ProcessCounters()
