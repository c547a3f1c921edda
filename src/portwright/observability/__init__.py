"""Observability: structured logs, Prometheus metrics, health checks, the status page and
optional OpenTelemetry traces."""

from portwright.observability._counters import (
    PROCESS,
    ProcessCounters,
    track_browser_pool,
    track_captcha_budget,
    track_proxy_pool,
)
from portwright.observability._health import ComponentStatus, health_router, status_of
from portwright.observability._logging import (
    REQUEST_ID_HEADER,
    RequestContextMiddleware,
    add_ids,
    configure_logging,
    install_excepthooks,
    mask_text,
    redact,
)
from portwright.observability._metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from portwright.observability._tracing import (
    SpanHandle,
    TracingConfigError,
    TracingMiddleware,
    add_trace_ids,
    configure_tracing,
    current_traceparent,
    ensure_tracing,
    install_tracing,
    span,
    tracing_enabled,
)

__all__ = [
    "CONTENT_TYPE",
    "PROCESS",
    "REQUEST_ID_HEADER",
    "ComponentStatus",
    "Metrics",
    "MetricsMiddleware",
    "ProcessCounters",
    "RequestContextMiddleware",
    "SpanHandle",
    "TracingConfigError",
    "TracingMiddleware",
    "add_ids",
    "add_trace_ids",
    "configure_logging",
    "configure_tracing",
    "current_traceparent",
    "ensure_tracing",
    "health_router",
    "install_excepthooks",
    "install_tracing",
    "mask_text",
    "redact",
    "span",
    "status_of",
    "tracing_enabled",
    "track_browser_pool",
    "track_captcha_budget",
    "track_proxy_pool",
]
