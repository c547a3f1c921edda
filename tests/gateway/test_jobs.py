"""The jobs API: submit, validate, list, read, input and steering, with their status codes."""

from __future__ import annotations

import httpx
import pytest

from portwright.client import Client, ConflictError, NotFoundError
from portwright.testing import wait_until
from tests.gateway._support import Stack


def _post(
    stack: Stack, key: str, path: str, *, headers: dict[str, str] | None = None, **kw: object
) -> httpx.Response:
    auth = {"authorization": f"Bearer {key}", **(headers or {})}
    return httpx.post(f"{stack.base_url}{path}", headers=auth, **kw)  # type: ignore[arg-type]


def test_submit_returns_202_with_location(stack: Stack, api_key: str) -> None:
    """POST /v1/jobs answers 202 with id, adapter and state, and a Location header."""
    body = {"adapter": "echo", "input": {"url": stack.urls["echo"], "key": "a"}, "priority": 3}
    response = _post(stack, api_key, "/v1/jobs", json=body)
    assert response.status_code == 202
    job = response.json()
    assert {"id", "adapter", "state"} <= set(job)
    assert job["adapter"] == "echo"
    assert job["priority"] == 3
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"


def test_unknown_adapter_is_404_listing_known(stack: Stack, api_key: str) -> None:
    """An unknown adapter is 404 and the answer lists the known ones."""
    response = _post(stack, api_key, "/v1/jobs", json={"adapter": "nope", "input": {}})
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "unknown_adapter"
    assert "echo" in body["known"]
    assert body["fields"][0]["field"] == "adapter"


def test_invalid_input_is_422_naming_the_field(stack: Stack, api_key: str) -> None:
    """Input that fails the adapter's model is 422 naming input.<field> and the problem."""
    response = _post(stack, api_key, "/v1/jobs", json={"adapter": "echo", "input": {"url": "u"}})
    assert response.status_code == 422
    fields = {f["field"]: f["problem"] for f in response.json()["fields"]}
    assert fields == {"input.key": "Field required"}
    assert "input.key" in response.json()["message"]


def test_invalid_envelope_is_422_naming_the_field(stack: Stack, api_key: str) -> None:
    """A bad request envelope (negative priority, unknown field) is 422 naming each field."""
    body = {"adapter": "echo", "input": {}, "priority": -1, "extra": 1}
    response = _post(stack, api_key, "/v1/jobs", json=body)
    assert response.status_code == 422
    assert {f["field"] for f in response.json()["fields"]} == {"priority", "extra"}


def test_malformed_json_is_400(stack: Stack, api_key: str) -> None:
    """A body that is not JSON is 400 naming the body."""
    response = _post(
        stack,
        api_key,
        "/v1/jobs",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400,)
    assert response.json()["code"] == "malformed_json"


def test_body_over_the_limit_is_413(stack: Stack, api_key: str) -> None:
    """A body over max_body_bytes is 413, declared or chunked."""
    big = {"adapter": "echo", "input": {"url": "x", "key": "k" * 70_000}}
    assert _post(stack, api_key, "/v1/jobs", json=big).status_code == 413

    def chunks() -> object:
        for _ in range(70):
            yield b"x" * 1024

    chunked = _post(stack, api_key, "/v1/jobs", content=chunks())
    assert chunked.status_code == 413
    assert chunked.json()["code"] == "body_too_large"


def test_list_filters_and_cursor(stack: Stack, client: Client) -> None:
    """Listing is newest first, filterable, and pages with next_cursor."""
    ids = [client.submit("echo", {"url": stack.urls["echo"], "key": f"l{i}"}).id for i in range(5)]
    client.submit("booking-stub", {"timeout_s": 1})
    first = client.list_jobs(adapter="echo", limit=3)
    assert [j.id for j in first.data] == ids[::-1][:3]
    assert first.next_cursor == ids[2]
    second = client.list_jobs(adapter="echo", limit=3, cursor=first.next_cursor)
    assert [j.id for j in second.data] == ids[::-1][3:]
    assert second.next_cursor is None
    assert all(j.adapter == "booking-stub" for j in client.list_jobs(portal="booking-stub").data)


async def test_read_job_and_events(stack: Stack, client: Client) -> None:
    """A job and its audit events can be read; events follow the job to SUCCEEDED."""
    job = client.submit("echo", {"url": stack.urls["echo"], "key": "ev"})
    await wait_until(lambda: client.get_job(job.id).status == "succeeded", timeout=20)
    events = client.events(job.id).data
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].to_state == "INIT"
    assert events[-1].to_state == "SUCCEEDED"
    with pytest.raises(NotFoundError):
        client.get_job("job_doesnotexist")


async def test_input_moves_a_waiting_job(stack: Stack, client: Client) -> None:
    """POST input is 202 and the waiting job receives the value; an input it does not take
    is 409."""
    job = client.submit("booking-stub", {})
    await wait_until(lambda: client.get_job(job.id).waiting_for == "payment", timeout=20)
    with pytest.raises(ConflictError) as refused:
        client.provide_input(job.id, "nonsense", 1)
    assert "takes no input 'nonsense'" in refused.value.message
    accepted = client.provide_input(job.id, "payment", {"status": "succeeded"})
    assert accepted.id == job.id
    await wait_until(lambda: client.get_job(job.id).status == "succeeded", timeout=20)
    assert client.get_job(job.id).output == {"payment": {"status": "succeeded"}}


async def test_cancel_pause_resume(stack: Stack, client: Client) -> None:
    """Pause and resume answer 200 with the job; cancel ends it; steering an ended job is 409."""
    job = client.submit("booking-stub", {})
    await wait_until(lambda: client.get_job(job.id).waiting_for == "payment", timeout=20)
    assert client.pause(job.id, "looking").paused is True
    assert client.resume(job.id).paused is False
    cancelled = client.cancel(job.id, "no longer needed")
    assert cancelled.state == "CANCELLED"
    with pytest.raises(ConflictError):
        client.cancel(job.id)
    with pytest.raises(ConflictError):
        client.provide_input(job.id, "payment", {})


async def test_retry(stack: Stack, client: Client) -> None:
    """A failed job retries as a new job (202, retry_of); a running one cannot (409)."""
    waiting = client.submit("booking-stub", {})
    with pytest.raises(ConflictError):
        client.retry(waiting.id)
    failed = client.submit("booking-stub", {"timeout_s": 0.2})
    await wait_until(lambda: client.get_job(failed.id).status == "failed", timeout=20)
    again = client.retry(failed.id)
    assert again.id != failed.id
    assert again.retry_of == failed.id
    assert again.input == client.get_job(failed.id).input
    client.cancel(waiting.id)


def test_portals(stack: Stack, client: Client) -> None:
    """Portals are listed; pausing needs the admin scope (403), unknown ones are 404."""
    from portwright.client import ForbiddenError

    names = {p.name for p in client.portals().data}
    assert {"echo", "scrape", "booking-stub"} <= names
    with pytest.raises(ForbiddenError):
        client.pause_portal("echo")
    admin = stack.new_key("admin-" + client.me().tenant, admin=True)
    with Client(stack.base_url, admin) as operator:
        with pytest.raises(NotFoundError) as missing:
            operator.pause_portal("no-such-portal")
        assert "echo" in (missing.value.known or [])
        assert operator.pause_portal("secret-user", "maintenance").paused is True
        assert operator.resume_portal("secret-user").paused is False
