"""/metrics parses and moves; /healthz, /readyz and /status answer; logs carry ids, no secrets."""

from __future__ import annotations

import json

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from portwright.observability import add_ids, redact
from portwright.testing import wait_until
from tests.delivery.conftest import Stack


def _get(url: str, **kw: object) -> httpx.Response:
    return httpx.get(url, **kw)  # type: ignore[arg-type]


def _post(url: str, **kw: object) -> httpx.Response:
    return httpx.post(url, **kw)  # type: ignore[arg-type]


def _samples(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = _get(f"{stack.base_url}/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def test_metrics_parse_and_move_with_jobs_http_and_deliveries(stack: Stack) -> None:
    """A finished job, an HTTP request and a delivery attempt each move their metric, and
    the exposition parses with prometheus-client's parser."""
    key, tenant_id = stack.new_key()
    before = _samples(stack)
    _post(
        f"{stack.base_url}/v1/webhook-endpoints",
        json={"url": stack.receiver.url, "topics": ["job.succeeded"]},
        headers={"authorization": f"Bearer {key}"},
    )
    job = await stack.service.submit(
        tenant_id=tenant_id, adapter="echo", input={"url": stack.echo_url, "key": "m"}
    )
    await wait_until(lambda: len(stack.receiver.received) >= 1, timeout=30)

    # the relay counts an attempt once its answer is back, after the receiver has the
    # request: wait for the count too (read too early, it was 0 once on a loaded machine)
    def counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        now = _samples(stack)
        return now if _total(now, "portwright_webhook_delivery_attempts_total") >= 1 else None

    after = await wait_until(counted, timeout=30)
    assert (
        _total(after, "portwright_jobs_finished") == _total(before, "portwright_jobs_finished") + 1
    )
    assert _total(after, "portwright_webhook_delivery_attempts_total") >= 1
    assert _total(after, "portwright_http_request_duration_seconds_count") > _total(
        before, "portwright_http_request_duration_seconds_count"
    )
    assert _total(after, "portwright_workers_live") >= 1
    assert any(
        n == "portwright_queue_depth" or n == "portwright_escalation_response_seconds_count"
        for n, _ in after
    )
    assert job.id


def test_health_ready_and_status_answer_without_a_key(stack: Stack) -> None:
    """/healthz reports uptime, /readyz the database, workers and queue, /status each portal."""
    assert _get(f"{stack.base_url}/healthz").json()["status"] == "ok"
    ready = _get(f"{stack.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    assert ready.json()["workers"] >= 1
    page = _get(f"{stack.base_url}/status")
    assert page.status_code == 200
    assert "<h1>Status</h1>" in page.text


def test_log_processors_add_the_workflow_id_and_mask_secrets() -> None:
    """A failing job's log line carries its job and workflow ids; secrets are masked."""
    secret = "whsec_c2VjcmV0LXRlc3Qta2V5LTEyMzQ1Ng=="
    event = {"event": "job failed", "job_id": "job_1", "detail": f"bad {secret}", "token": "x"}
    line = json.dumps(dict(redact(None, "", add_ids(None, "", event))))
    assert '"workflow_id": "job_1"' in line
    assert secret not in line
    assert '"token": "***"' in line
    assert structlog.get_config()
