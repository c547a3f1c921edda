"""Observability: structured logs, Prometheus metrics, health checks and the status page."""

from portwright.observability._counters import PROCESS, ProcessCounters, track_browser_pool
from portwright.observability._health import ComponentStatus, health_router, status_of
from portwright.observability._logging import add_ids, configure_logging, redact
from portwright.observability._metrics import CONTENT_TYPE, Metrics, MetricsMiddleware

__all__ = [
    "CONTENT_TYPE",
    "PROCESS",
    "ComponentStatus",
    "Metrics",
    "MetricsMiddleware",
    "ProcessCounters",
    "add_ids",
    "configure_logging",
    "health_router",
    "redact",
    "status_of",
    "track_browser_pool",
]
