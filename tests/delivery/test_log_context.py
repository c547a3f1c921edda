"""Log lines carry the ids of what is running: a request's id and tenant, a job's ids (library
code's lines too), and an error nothing handled is a JSON 500 quoting the request id."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pytest
import structlog
from pydantic import BaseModel

from portwright.adapters import AdapterRegistry
from portwright.gateway import create_app, issue_key
from portwright.observability import configure_logging
from portwright.orchestrator import JobService
from portwright.sdk import Adapter, Job, PermanentError, StepContext, linear_machine
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.gateway._support import ServerThread

# Code an adapter or a route calls, logging through its own logger with no ids of its own.
LIBRARY = structlog.get_logger("some.library")


class NoteInput(BaseModel):
    note: str


async def _call(sc: StepContext, note: str) -> str:
    LIBRARY.warning("library noticed something", note=note)
    raise PermanentError("the portal said no")


class LibraryAdapter(Adapter[NoteInput]):
    name: ClassVar[str] = "library-logger"
    input_model = NoteInput
    machine = linear_machine("library-logger", ["WORKING"])

    async def run(self, job: Job[NoteInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        return {"value": await job.step("call", _call, job.input.note)}


@dataclass
class Gateway:
    service: JobService
    url: str
    key: str
    tenant_id: str


@pytest.fixture
def gateway(settings: Settings, service_for: Any) -> Iterator[Gateway]:
    tuned = settings.model_copy(update={"log_json": True})
    configure_logging(tuned)
    registry = AdapterRegistry()
    registry.register(LibraryAdapter)
    service = service_for(registry, settings=tuned)
    app = create_app(service, tuned)

    async def boom() -> None:
        LIBRARY.info("about to fail")
        raise RuntimeError("kaboom")

    app.add_api_route("/v1/boom", boom)
    issued = issue_key(service.store, tenant="logs")
    server = ServerThread(app).start()
    try:
        yield Gateway(service, server.url, issued.key, issued.record.tenant_id)
    finally:
        server.stop()
        structlog.reset_defaults()


def _lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capfd.readouterr().out.splitlines()
    return [json.loads(line) for line in out if line[:1] == "{"]


def test_a_request_has_an_id_in_its_answer_and_its_log_lines(
    gateway: Gateway, capfd: pytest.CaptureFixture[str]
) -> None:
    """The caller's plain X-Request-ID is kept, a missing or unsafe one replaced; a route's
    lines carry it and the tenant; an unhandled error is logged with both and answered 500."""
    auth = {"authorization": f"Bearer {gateway.key}"}
    kept = httpx.get(f"{gateway.url}/v1/me", headers={**auth, "x-request-id": "order-sync.42"})
    assert kept.status_code == 200
    assert kept.headers["x-request-id"] == "order-sync.42"
    made = [httpx.get(f"{gateway.url}/v1/me", headers=auth) for _ in range(2)]
    ids = [m.headers["x-request-id"] for m in made]
    assert all(re.fullmatch(r"req_[0-9a-f]{16}", i) for i in ids)
    assert ids[0] != ids[1]
    unsafe = httpx.get(f"{gateway.url}/v1/me", headers={**auth, "x-request-id": "a\tb" * 3})
    assert re.fullmatch(r"req_[0-9a-f]{16}", unsafe.headers["x-request-id"])
    refused = httpx.get(f"{gateway.url}/v1/me", headers={"x-request-id": "no-key-1"})
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "no-key-1"

    failed = httpx.get(f"{gateway.url}/v1/boom", headers={**auth, "x-request-id": "boom-1"})
    assert failed.status_code == 500
    assert failed.headers["x-request-id"] == "boom-1"
    body = failed.json()
    assert body["code"] == "internal"
    assert "boom-1" in body["message"]
    assert "kaboom" not in failed.text  # the detail stays in the log

    lines = _lines(capfd)
    (before,) = [line for line in lines if line["event"] == "about to fail"]
    assert before["request_id"] == "boom-1"
    assert before["tenant_id"] == gateway.tenant_id
    (error,) = [line for line in lines if line["event"] == "unhandled error"]
    assert error["request_id"] == "boom-1"
    assert error["tenant_id"] == gateway.tenant_id
    assert error["path"] == "/v1/boom"
    assert error["level"] == "error"
    assert "RuntimeError: kaboom" in error["exception"]


async def test_library_lines_logged_inside_a_job_carry_its_ids(
    gateway: Gateway, capfd: pytest.CaptureFixture[str]
) -> None:
    """A line from code with no ids of its own, logged inside a job's step, names the job,
    its workflow, tenant, step and attempt; a line logged after the job does not."""
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"{gateway.url}/v1/jobs",
            json={"adapter": "library-logger", "input": {"note": "n-1"}},
            headers={"authorization": f"Bearer {gateway.key}"},
        )
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    store = gateway.service.store
    await wait_until(lambda: store.jobs.get(job_id).state == "FAILED", timeout=60)
    LIBRARY.info("after the job")
    lines = _lines(capfd)
    (inside,) = [line for line in lines if line["event"] == "library noticed something"]
    assert inside["job_id"] == job_id
    assert inside["workflow_id"] == job_id
    assert inside["tenant_id"] == gateway.tenant_id
    assert inside["adapter"] == "library-logger"
    assert inside["step"] == "call"
    assert inside["attempt"] == 1
    (after,) = [line for line in lines if line["event"] == "after the job"]
    assert "job_id" not in after
    assert "step" not in after
