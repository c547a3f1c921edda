"""Prometheus metrics: process counters and histograms, plus gauges read from the database.

State that lives in the database (queue depth, running jobs, live workers,
finished jobs, retries, cooldowns, breakers, escalations, dead letters) is
read at scrape time by `StoreCollector`, so every process reports the same
truth. Events that happen in one process (HTTP requests, delivery attempts,
captchas, proxy rotations) are counted by `Metrics`, one registry per app.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from portwright.observability._counters import PROCESS
from portwright.store import Store

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware", "StoreCollector"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ESCALATION_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


class Metrics:
    """The process-side instruments, in their own registry (one per app)."""

    def __init__(self, store: Store, *, live_after_s: float = 15.0) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_latency = Histogram(
            "portwright_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["route", "method", "status"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "portwright_webhook_delivery_seconds",
            "Outbound delivery attempt duration by endpoint kind and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.delivery_lag = Histogram(
            "portwright_webhook_delivery_lag_seconds",
            "Event written → delivery attempt finished",
            ["kind", "outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.delivery_attempts = Counter(
            "portwright_webhook_delivery_attempts",
            "Outbound delivery attempts by endpoint kind and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        # Counted where jobs run (captchas, identity burns, browser pools): see _counters.
        r.register(PROCESS.registry)
        r.register(StoreCollector(store, live_after_s=live_after_s))

    def attempt(self, kind: str, outcome: str, seconds: float, lag_s: float) -> None:
        """A `DeliveryObserver`: one outbound attempt finished."""
        self.delivery_latency.labels(kind, outcome).observe(seconds)
        self.delivery_lag.labels(kind, outcome).observe(max(0.0, lag_s))
        self.delivery_attempts.labels(kind, outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_latency.labels(
                template, scope["method"], str(status["code"])
            ).observe(time.perf_counter() - started)


def _gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[Any, ...]]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for *values, count in rows:
        family.add_metric([str(v) if v is not None else "" for v in values], float(count))
    return family


class StoreCollector(Collector):
    """Gauges computed from the database when Prometheus scrapes."""

    def __init__(self, store: Store, *, live_after_s: float) -> None:
        self.store = store
        self.live_after_s = live_after_s

    def collect(self) -> Iterable[Metric]:
        from portwright.store.schema import (
            breakers,
            deliveries,
            escalations,
            job_events,
            jobs,
            portal_probes,
            portals,
            proxy_burns,
            sites,
            webhook_endpoints,
            workers,
        )

        now = time.time()
        j = jobs.c
        with self.store.engine.connect() as conn:

            def rows(query: Any) -> list[tuple[Any, ...]]:
                return [tuple(r) for r in conn.execute(query)]

            yield _gauge(
                "portwright_queue_depth", "Jobs waiting to run, per queue (adapter) and portal",
                ["queue", "portal"],
                rows(sa.select(j.adapter, j.portal, sa.func.count()).where(j.status == "queued")
                     .group_by(j.adapter, j.portal)),
            )  # fmt: skip
            yield _gauge(
                "portwright_queue_oldest_age_seconds",
                "Seconds the longest-waiting queued job has waited (since its last change), "
                "per queue",
                ["queue"],
                rows(sa.select(j.adapter, now - sa.func.min(j.updated_at))
                     .where(j.status == "queued", j.paused.is_(False)).group_by(j.adapter)),
            )  # fmt: skip
            yield _gauge(
                "portwright_jobs_running", "Jobs running now, per portal", ["portal"],
                rows(sa.select(j.portal, sa.func.count()).where(j.status == "running")
                     .group_by(j.portal)),
            )  # fmt: skip
            live = conn.execute(
                sa.select(sa.func.count()).where(
                    workers.c.status == "alive", workers.c.heartbeat_at > now - self.live_after_s
                )
            ).scalar()
            yield _gauge(
                "portwright_workers_live", "Workers with a recent heartbeat", [], [(live,)]
            )
            yield _gauge(
                "portwright_jobs_finished", "Finished jobs by portal, outcome and error class",
                ["portal", "outcome", "error_class"],
                rows(sa.select(j.portal, j.status, j.error_class, sa.func.count())
                     .where(j.finished_at.is_not(None))
                     .group_by(j.portal, j.status, j.error_class)),
            )  # fmt: skip
            e = job_events.c
            yield _gauge(
                "portwright_job_retries", "Retry waits entered, per portal", ["portal"],
                rows(sa.select(j.portal, sa.func.count()).select_from(job_events.join(jobs))
                     .where(e.to_state == "RETRY_WAIT").group_by(j.portal)),
            )  # fmt: skip
            yield _gauge(
                "portwright_cooldowns", "Cooldowns entered by jobs, per portal", ["portal"],
                rows(sa.select(j.portal, sa.func.count()).select_from(job_events.join(jobs))
                     .where(e.to_state == "COOLDOWN", e.kind == "transition")
                     .group_by(j.portal)),
            )  # fmt: skip
            p = portals.c
            yield _gauge(
                "portwright_portal_cooling_down", "1 while a portal is in a cooldown", ["portal"],
                rows(sa.select(p.name, sa.case((p.cooldown_until > now, 1), else_=0))),
            )  # fmt: skip
            s = sites.c
            yield _gauge(
                "portwright_site_cooling_down",
                "1 while a target site (or one tenant's use of it) is in a cooldown, per "
                "portal and site; tenant is empty for the whole site",
                ["portal", "site", "tenant"],
                rows(sa.select(s.portal, s.host, sa.func.coalesce(s.tenant_id, ""), 1)
                     .where(s.cooldown_until > now)),
            )  # fmt: skip
            yield _gauge(
                "portwright_site_degraded", "1 while a target site is marked degraded",
                ["portal", "site"],
                rows(sa.select(s.portal, s.host, 1).where(s.degraded_since.is_not(None),
                                                          s.tenant_id.is_(None))),
            )  # fmt: skip
            b = breakers.c
            state = sa.case((b.state == "open", 2), (b.state == "half_open", 1), else_=0)
            yield _gauge(
                "portwright_circuit_state", "Breaker state: 0 closed, 1 half-open, 2 open",
                ["name"], rows(sa.select(b.name, state)),
            )  # fmt: skip
            w = webhook_endpoints.c
            yield _gauge(
                "portwright_endpoint_circuit_open", "1 while an endpoint's breaker is open",
                ["endpoint", "platform"],
                rows(sa.select(w.id, w.platform,
                               sa.case((w.breaker_open_until > now, 1), else_=0))),
            )  # fmt: skip
            d = deliveries.c
            yield _gauge(
                "portwright_deliveries", "Outbound deliveries by status and platform",
                ["status", "platform"],
                rows(sa.select(d.status, d.platform, sa.func.count())
                     .group_by(d.status, d.platform)),
            )  # fmt: skip
            yield _gauge(
                "portwright_proxy_burns", "Proxies burned (per scope), still recorded", [],
                rows(sa.select(sa.func.count()).select_from(proxy_burns)),
            )  # fmt: skip
            x = escalations.c
            yield _gauge(
                "portwright_escalations_open", "Escalations waiting for an operator", ["portal"],
                rows(sa.select(x.portal, sa.func.count()).where(x.status != "resolved")
                     .group_by(x.portal)),
            )  # fmt: skip
            yield _gauge(
                "portwright_escalation_oldest_age_seconds",
                "Seconds the oldest unresolved escalation has waited, per portal", ["portal"],
                rows(sa.select(x.portal, now - sa.func.min(x.created_at))
                     .where(x.status != "resolved").group_by(x.portal)),
            )  # fmt: skip
            pp = portal_probes.c
            yield _gauge(
                "portwright_probe_failures",
                "Consecutive failed runs of a portal's synthetic probe (0 after a good one)",
                ["portal"], rows(sa.select(pp.portal, pp.failures).where(pp.enabled)),
            )  # fmt: skip
            yield _gauge(
                "portwright_probe_last_run_age_seconds",
                "Seconds since a portal's synthetic probe last ran (enabled probes that ran)",
                ["portal"],
                rows(sa.select(pp.portal, now - pp.last_at)
                     .where(pp.enabled, pp.last_at.is_not(None))),
            )  # fmt: skip
            yield _gauge(
                "portwright_probe_interval_seconds",
                "The configured interval of a portal's synthetic probe", ["portal"],
                rows(sa.select(pp.portal, pp.every_s).where(pp.enabled)),
            )  # fmt: skip
            yield _gauge(
                "portwright_portal_probe_escalations_open",
                "Unresolved portal-level escalations a probe raised (a DOM shift), per portal",
                ["portal"],
                rows(sa.select(x.portal, sa.func.count())
                     .where(x.job_id.is_(None), x.status != "resolved").group_by(x.portal)),
            )  # fmt: skip
            durations = [
                float(r[0])
                for r in conn.execute(
                    sa.select(x.resolved_at - x.created_at).where(x.resolved_at.is_not(None))
                )
            ]
        yield _histogram(
            "portwright_escalation_response_seconds",
            "Escalation opened → resolved",
            durations,
        )


def _histogram(name: str, doc: str, values: list[float]) -> Metric:
    buckets = [(str(b), float(sum(v <= b for v in values))) for b in ESCALATION_BUCKETS]
    buckets.append(("+Inf", float(len(values))))
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], buckets, sum_value=sum(values))
    return family
