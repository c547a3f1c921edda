"""Optional OpenTelemetry traces: request spans, job and step spans, trace ids in logs, and
nothing at all while tracing is off."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import httpx
import pytest
import structlog
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from portwright.adapters import AdapterRegistry
from portwright.gateway import create_app, issue_key
from portwright.observability import (
    TracingConfigError,
    configure_logging,
    configure_tracing,
    span,
    tracing_enabled,
)
from portwright.orchestrator import JobService, Runtime
from portwright.sdk import (
    Adapter,
    BlockedError,
    Job,
    PermanentError,
    StepContext,
    linear_machine,
)
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.gateway._support import ServerThread

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


class Nothing(BaseModel):
    pass


async def _calm_step(sc: StepContext) -> str:
    return "fine"


async def _explode(sc: StepContext) -> str:
    raise PermanentError("the portal said no")


class Calm(Adapter[Nothing]):
    name: ClassVar[str] = "trace-calm"
    input_model = Nothing
    machine = linear_machine("trace-calm", ["WORKING"])

    async def run(self, job: Job[Nothing]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        return {"value": await job.step("settle", _calm_step)}


class Boom(Adapter[Nothing]):
    name: ClassVar[str] = "trace-boom"
    portal: ClassVar[str | None] = "boom-portal"
    input_model = Nothing
    machine = linear_machine("trace-boom", ["WORKING"])

    async def run(self, job: Job[Nothing]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        return {"value": await job.step("explode", _explode)}


async def _blocked(sc: StepContext) -> str:
    raise BlockedError("403 from the edge")


class Stuck(Adapter[Nothing]):
    name: ClassVar[str] = "trace-stuck"
    input_model = Nothing
    machine = linear_machine("trace-stuck", ["WORKING"])

    async def run(self, job: Job[Nothing]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        return {"value": await job.step("enter", _blocked)}


@dataclass
class Stack:
    settings: Settings
    service: JobService
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url


class Recorder(SpanProcessor):
    """Notes every span started or ended; survives being shut down (so a stale provider
    still using it would show)."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span.name)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span.name)

    def shutdown(self) -> None:
        pass


def _off_loop(fn: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _off() -> Settings:
    return Settings(otel_exporter="none")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A runtime with workers and its gateway, on SQLite; built while tracing is on, so the
    app has its tracing middleware."""
    tmp = tmp_path_factory.mktemp("tracing")
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'app.sqlite'}",
        worker_id=f"trace-{secrets.token_hex(3)}",
        heartbeat_interval_s=0.3,
        dead_worker_after_s=2.0,
        queue_polling_interval_s=0.05,
        log_json=False,
    )
    registry = AdapterRegistry()
    registry.register(Calm)
    registry.register(Boom)
    registry.register(Stuck)
    runtime = Runtime(settings, registry)
    _off_loop(runtime.start)
    service = JobService(runtime)
    configure_tracing(settings, exporter=InMemorySpanExporter())
    try:
        server = ServerThread(create_app(service, settings)).start()
    finally:
        configure_tracing(_off())
    try:
        yield Stack(settings, service, server)
    finally:
        server.stop()
        _off_loop(runtime.stop)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on, spans collected in memory; off again afterwards."""
    collected = InMemorySpanExporter()
    assert configure_tracing(_off(), exporter=collected)
    try:
        yield collected
    finally:
        configure_tracing(_off())
    assert not tracing_enabled()


async def _settled(service: JobService, job_id: str) -> Any:
    async def done() -> Any:
        job = await service.get(job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return await wait_until(done, timeout=20)


def _finished(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def _job_span(exporter: InMemorySpanExporter, name: str, job_id: str) -> ReadableSpan:
    """The job's one finished span. It ends just after the job's last transition commits,
    so a test that saw the job settled may have to wait a moment for it."""

    def found() -> list[ReadableSpan]:
        return [
            s
            for s in _finished(exporter, name)
            if (s.attributes or {}).get("portwright.job_id") == job_id
        ]

    spans = cast("list[ReadableSpan]", await wait_until(found, timeout=10))
    assert len(spans) == 1, [s.name for s in exporter.get_finished_spans()]
    return spans[0]


def test_a_request_has_a_server_span_continuing_the_callers_trace(
    stack: Stack, exporter: InMemorySpanExporter
) -> None:
    """A request's span is named by its route template, carries method, path, route, status
    and tenant, and joins the trace of an incoming `traceparent`."""
    issued = issue_key(stack.service.store, tenant=f"tr-{secrets.token_hex(3)}")
    response = httpx.get(
        f"{stack.url}/v1/jobs/job_missing",
        headers={"authorization": f"Bearer {issued.key}", "traceparent": TRACEPARENT},
    )
    assert response.status_code == 404
    spans = _finished(exporter, "GET /v1/jobs/{job_id}")
    assert len(spans) == 1, [s.name for s in exporter.get_finished_spans()]
    server = spans[0]
    assert server.kind == SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    attrs = dict(server.attributes or {})
    assert attrs["http.request.method"] == "GET"
    assert attrs["url.path"] == "/v1/jobs/job_missing"
    assert attrs["http.route"] == "/v1/jobs/{job_id}"
    assert attrs["http.response.status_code"] == 404
    assert attrs["portwright.tenant_id"] == issued.record.tenant_id
    assert server.resource.attributes["service.name"] == "portwright"

    # Without a traceparent a request starts its own trace; an unauthenticated one has no
    # tenant and is still traced (the middleware is outermost).
    exporter.clear()
    response = httpx.get(f"{stack.url}/v1/jobs/job_missing")
    assert response.status_code == 401
    (refused,) = exporter.get_finished_spans()
    assert format(refused.context.trace_id, "032x") != TRACE_ID
    assert refused.parent is None
    assert dict(refused.attributes or {})["http.response.status_code"] == 401
    assert "portwright.tenant_id" not in dict(refused.attributes or {})


async def test_a_job_run_has_a_span_with_its_ids_and_a_failure_its_error_class(
    stack: Stack, exporter: InMemorySpanExporter
) -> None:
    """A job's span names job, workflow, tenant, adapter and portal; each step has a span
    inside it; a failed job's span and step span are errors with the error class."""
    service = stack.service
    tenant = service.store.tenants.ensure("tracing")
    calm = await service.submit(tenant_id=tenant.id, adapter="trace-calm", input={})
    boom = await service.submit(tenant_id=tenant.id, adapter="trace-boom", input={})
    assert (await _settled(service, calm.id)).state == "SUCCEEDED"
    assert (await _settled(service, boom.id)).state == "FAILED"

    ok = await _job_span(exporter, "job trace-calm", calm.id)
    attrs = dict(ok.attributes or {})
    assert attrs["portwright.workflow_id"] == calm.id
    assert attrs["portwright.tenant_id"] == tenant.id
    assert attrs["portwright.adapter"] == "trace-calm"
    assert attrs["portwright.portal"] == "trace-calm"
    assert attrs["portwright.state"] == "SUCCEEDED"
    assert ok.status.status_code != StatusCode.ERROR
    step = await _job_span(exporter, "step settle", calm.id)
    assert step.parent is not None
    assert step.parent.span_id == ok.context.span_id
    assert dict(step.attributes or {})["portwright.step"] == "settle"

    failed = await _job_span(exporter, "job trace-boom", boom.id)
    attrs = dict(failed.attributes or {})
    assert attrs["portwright.workflow_id"] == boom.id
    assert attrs["portwright.portal"] == "boom-portal"
    assert attrs["portwright.state"] == "FAILED"
    assert failed.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == attrs["portwright.error_class"] == "permanent"
    assert "the portal said no" in (failed.status.description or "")
    exploded = await _job_span(exporter, "step explode", boom.id)
    assert exploded.parent is not None
    assert exploded.parent.span_id == failed.context.span_id
    assert exploded.status.status_code == StatusCode.ERROR
    assert dict(exploded.attributes or {})["error.type"] == "permanent"


async def test_a_job_submitted_in_a_traced_request_runs_in_that_requests_trace(
    stack: Stack, exporter: InMemorySpanExporter
) -> None:
    """A job submitted through the API with a `traceparent` runs its span (and its steps)
    in the caller's trace, as a child of the request's span; one submitted outside any
    span starts a trace of its own."""
    issued = issue_key(stack.service.store, tenant=f"tr-{secrets.token_hex(3)}")
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{stack.url}/v1/jobs",
            json={"adapter": "trace-calm", "input": {}},
            headers={"authorization": f"Bearer {issued.key}", "traceparent": TRACEPARENT},
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert (await _settled(stack.service, job_id)).state == "SUCCEEDED"
    stored = await stack.service.get(job_id)
    assert stored.trace_parent is not None
    assert stored.trace_parent.split("-")[1] == TRACE_ID
    (request,) = _finished(exporter, "POST /v1/jobs")
    job = await _job_span(exporter, "job trace-calm", job_id)
    assert format(job.context.trace_id, "032x") == TRACE_ID
    assert job.parent is not None
    assert job.parent.span_id == request.context.span_id
    (step,) = [s for s in _finished(exporter, "step settle") if s.parent == job.context]
    assert step.context.trace_id == job.context.trace_id

    tenant = stack.service.store.tenants.ensure("tracing")
    alone = await stack.service.submit(tenant_id=tenant.id, adapter="trace-calm", input={})
    assert alone.trace_parent is None
    assert (await _settled(stack.service, alone.id)).state == "SUCCEEDED"
    own = await _job_span(exporter, "job trace-calm", alone.id)
    assert own.parent is None
    assert format(own.context.trace_id, "032x") != TRACE_ID


async def test_a_job_an_operator_fails_ends_with_an_error_span(
    stack: Stack, exporter: InMemorySpanExporter
) -> None:
    """A job escalated to an operator (blocked, no identity to rotate to) and failed by the
    operator ends with its span an error carrying the class it escalated with."""
    service = stack.service
    tenant = service.store.tenants.ensure("tracing")
    job = await service.submit(tenant_id=tenant.id, adapter="trace-stuck", input={})

    async def escalated() -> Any:
        found = await service.escalations(job_id=job.id)
        return found[0] if found else None

    esc = await wait_until(escalated, timeout=20)
    await service.decide(esc.id, "fail", actor="op:tracing", reason="the portal banned us")
    assert (await _settled(service, job.id)).state == "FAILED"
    stuck = await _job_span(exporter, "job trace-stuck", job.id)
    attrs = dict(stuck.attributes or {})
    assert stuck.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == attrs["portwright.error_class"] == "blocked"
    assert attrs["portwright.state"] == "FAILED"
    assert stuck.status.description == "the portal banned us"


async def test_with_tracing_off_nothing_is_traced_and_span_is_a_no_op(stack: Stack) -> None:
    """Turned off, no span starts for a request or a job (even on a processor that was
    attached before), `span()` still works, and log lines carry no trace id."""
    recorder = Recorder()
    assert configure_tracing(_off(), processor=recorder)
    with span("probe", job_id="j1") as probe:
        probe.set(attempt=1)
    assert recorder.ended == ["probe"]
    assert not configure_tracing(_off())
    assert not tracing_enabled()

    with span("quiet", job_id="j2") as quiet:
        quiet.set(attempt=2)
        quiet.fail("permanent", "nothing records this")
    with pytest.raises(ValueError, match="still raised"), span("raising"):
        raise ValueError("still raised")
    issued = issue_key(stack.service.store, tenant=f"off-{secrets.token_hex(3)}")
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{stack.url}/v1/jobs/job_missing",
            headers={"authorization": f"Bearer {issued.key}", "traceparent": TRACEPARENT},
        )
    assert response.status_code == 404
    tenant = stack.service.store.tenants.ensure("tracing-off")
    job = await stack.service.submit(tenant_id=tenant.id, adapter="trace-boom", input={})
    assert (await _settled(stack.service, job.id)).state == "FAILED"
    assert recorder.started == ["probe"]
    assert recorder.ended == ["probe"]


def test_without_tracing_opentelemetrys_sdk_is_never_imported(tmp_path: Path) -> None:
    """The gateway, the orchestrator and `span()` run without loading the SDK."""
    code = (
        "import sys\n"
        "import portwright.gateway, portwright.orchestrator, portwright.cli\n"
        "from portwright.observability import configure_tracing, span\n"
        "from portwright.settings import Settings\n"
        "assert not configure_tracing(Settings())\n"
        "with span('x', job_id='j') as s:\n"
        "    s.set(a=1)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTWRIGHT_", "OTEL_"))}
    env["PORTWRIGHT_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_asking_for_traces_without_the_extra_names_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PORTWRIGHT_OTEL_EXPORTER set but OpenTelemetry's SDK missing: a clear error."""
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(TracingConfigError, match=r"pip install 'portwright\[otel\]'"):
        configure_tracing(Settings(otel_exporter="console"))
    assert not tracing_enabled()


def test_the_exporter_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTWRIGHT_OTEL_EXPORTER", "otlp")
    assert Settings().otel_exporter == "otlp"
    monkeypatch.setenv("PORTWRIGHT_OTEL_EXPORTER", "jaeger")
    with pytest.raises(ValueError, match="otel_exporter"):
        Settings()


def test_a_log_line_inside_a_span_carries_its_trace_id(
    exporter: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    """Log lines emitted inside a span carry its trace and span ids; outside, none."""
    saved = structlog.get_config()
    try:
        configure_logging(Settings(log_json=True))
        log = structlog.get_logger("portwright.test")
        with span("logged", job_id="job_logged"):
            log.info("inside", job_id="job_logged")
        log.info("outside")
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    finally:
        structlog.configure(**saved)
    (logged,) = _finished(exporter, "logged")
    inside, outside = lines[-2], lines[-1]
    assert inside["event"] == "inside"
    assert inside["trace_id"] == format(logged.context.trace_id, "032x")
    assert inside["span_id"] == format(logged.context.span_id, "016x")
    assert inside["workflow_id"] == "job_logged"
    assert "trace_id" not in outside
