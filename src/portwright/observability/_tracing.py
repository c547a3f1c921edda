"""Optional OpenTelemetry traces: a server span per HTTP request, a span per job and step.

Off unless `PORTWRIGHT_OTEL_EXPORTER` is `console` (spans printed to stderr) or `otlp`
(sent over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`, the exporter's own standard
variables). It needs the `otel` extra; opentelemetry is imported only when tracing is
turned on, so everything works without it. The service name is "portwright" unless
`OTEL_SERVICE_NAME` (or `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.

Portwright's own spans come from its own tracer provider (not the process-global one,
which can be set only once): `span(name, **attributes)` is a cheap no-op while tracing is
off, and `TracingMiddleware` passes requests straight through.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from portwright.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.util.types import AttributeValue
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "SpanHandle",
    "TracingConfigError",
    "TracingMiddleware",
    "add_trace_ids",
    "configure_tracing",
    "current_traceparent",
    "ensure_tracing",
    "install_tracing",
    "span",
    "tracing_enabled",
]

INSTALL_HINT = "pip install 'portwright[otel]'"
SERVICE_NAME = "portwright"


class TracingConfigError(RuntimeError):
    """Tracing was asked for but cannot be set up (the otel extra is not installed)."""


@dataclass(frozen=True, slots=True)
class _Tracing:
    provider: TracerProvider
    tracer: Tracer
    propagator: TraceContextTextMapPropagator


_tracing: _Tracing | None = None


def tracing_enabled() -> bool:
    return _tracing is not None


def configure_tracing(
    settings: Settings,
    *,
    exporter: SpanExporter | None = None,
    processor: SpanProcessor | None = None,
) -> bool:
    """Turn tracing on as `settings.otel_exporter` says (or off); returns whether it is on.

    `exporter` (exported span by span, e.g. the SDK's `InMemorySpanExporter`) or
    `processor` replaces the configured exporter and turns tracing on regardless: for
    tests. Calling it again replaces the previous set-up, flushing and shutting it down.
    """
    global _tracing  # noqa: PLW0603 - one tracing set-up per process, like logging's
    previous, _tracing = _tracing, None
    if previous is not None:
        previous.provider.shutdown()
    kind = settings.otel_exporter
    if exporter is None and processor is None and kind == "none":
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator,
        )
    except ImportError as exc:
        raise TracingConfigError(
            f"PORTWRIGHT_OTEL_EXPORTER={kind} needs OpenTelemetry, which is not installed: "
            f"{INSTALL_HINT}"
        ) from exc
    if processor is None:
        if exporter is not None:
            processor = SimpleSpanProcessor(exporter)
        elif kind == "console":
            processor = BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr))
        else:
            processor = BatchSpanProcessor(_otlp_exporter())
    resource = Resource.create()  # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, if set
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("portwright")
    _tracing = _Tracing(provider, tracer, TraceContextTextMapPropagator())
    return True


def _otlp_exporter() -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise TracingConfigError(
            "PORTWRIGHT_OTEL_EXPORTER=otlp needs the OTLP exporter, which is not installed: "
            f"{INSTALL_HINT}"
        ) from exc
    return OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, headers, timeout


def ensure_tracing(settings: Settings) -> bool:
    """Whether tracing is on, setting it up from `settings` if nothing has yet (an app built
    outside the CLI, e.g. `portwright api` or an ASGI factory)."""
    if _tracing is None and settings.otel_exporter != "none":
        configure_tracing(settings)
    return _tracing is not None


# -- spans in Portwright's code ------------------------------------------------------------


def _attributes(values: dict[str, Any]) -> dict[str, AttributeValue]:
    """Keyword attributes as span attributes: plain names go under `portwright.`."""
    out: dict[str, AttributeValue] = {}
    for key, value in values.items():
        if value is None:
            continue
        name = key if "." in key else f"portwright.{key}"
        out[name] = value if isinstance(value, str | bool | int | float) else str(value)
    return out


class SpanHandle:
    """What `span()` gives: a context manager whose methods do nothing while tracing is off."""

    __slots__ = ()

    def __enter__(self) -> SpanHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def set(self, **attributes: Any) -> None:
        """Add attributes (plain names go under `portwright.`)."""

    def fail(self, error_class: str, message: str = "") -> None:
        """Mark the span failed: error status, `error.type` and `portwright.error_class`."""


NO_SPAN = SpanHandle()


class _LiveSpan(SpanHandle):
    __slots__ = ("_cm", "_span")

    def __init__(
        self, tracing: _Tracing, name: str, attributes: dict[str, Any], parent: str | None
    ) -> None:
        context = tracing.propagator.extract({"traceparent": parent}) if parent else None
        self._cm = tracing.tracer.start_as_current_span(
            name, context=context, attributes=_attributes(attributes)
        )
        self._span: Span | None = None

    def __enter__(self) -> SpanHandle:
        self._span = self._cm.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self._span is not None:
            self._span.set_attribute("error.type", type(exc).__qualname__)
        self._cm.__exit__(exc_type, exc, tb)  # records the exception, sets error status

    def set(self, **attributes: Any) -> None:
        if self._span is not None:
            self._span.set_attributes(_attributes(attributes))

    def fail(self, error_class: str, message: str = "") -> None:
        from opentelemetry.trace import Status, StatusCode

        if self._span is not None:
            self._span.set_attributes(
                {"error.type": error_class, "portwright.error_class": error_class}
            )
            self._span.set_status(Status(StatusCode.ERROR, message or None))


def span(name: str, *, parent: str | None = None, **attributes: Any) -> SpanHandle:
    """A span around a block, the current one inside it (`with span("job", job_id=…) as s:`).

    Keyword names go under `portwright.` (`job_id` → `portwright.job_id`); None values are
    left out. An exception leaving the block marks the span failed with its class. `parent`,
    a W3C `traceparent` (see `current_traceparent`), puts the span in that trace instead of
    the current one: a job's span joins the request that submitted it."""
    tracing = _tracing
    if tracing is None:
        return NO_SPAN
    return _LiveSpan(tracing, name, attributes, parent)


def current_traceparent() -> str | None:
    """The current span as a W3C `traceparent`, to store with work that runs later (None
    while tracing is off or outside any span)."""
    tracing = _tracing
    if tracing is None:
        return None
    carrier: dict[str, str] = {}
    tracing.propagator.inject(carrier)
    return carrier.get("traceparent")


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: `trace_id` and `span_id` of the current span, if there is one."""
    if _tracing is None:
        return event
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


# -- HTTP ----------------------------------------------------------------------------------


def install_tracing(app: Starlette, settings: Settings) -> bool:
    """Add `TracingMiddleware` to `app`, outermost so far, if tracing is on (`ensure_tracing`)."""
    if not ensure_tracing(settings):
        return False
    app.add_middleware(TracingMiddleware)
    return True


class TracingMiddleware:
    """Pure ASGI middleware: a server span per HTTP request, continuing an incoming W3C
    `traceparent`, named "METHOD /route/{template}" once the router has matched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracing = _tracing
        if tracing is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        carrier: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            if key in (b"traceparent", b"tracestate"):
                carrier[key.decode("latin-1")] = value.decode("latin-1")
        method = scope["method"]
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with tracing.tracer.start_as_current_span(
            method,
            context=tracing.propagator.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as current:
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                template = getattr(scope.get("route"), "path", None)
                if template:
                    current.update_name(f"{method} {template}")
                    current.set_attribute("http.route", template)
                current.set_attribute("http.response.status_code", status["code"])
                principal = (scope.get("state") or {}).get("principal")
                tenant_id = getattr(principal, "tenant_id", None)
                if isinstance(tenant_id, str):
                    current.set_attribute("portwright.tenant_id", tenant_id)
                if status["code"] >= 500:
                    current.set_attribute("error.type", str(status["code"]))
                    current.set_status(Status(StatusCode.ERROR))
