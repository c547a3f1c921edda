"""Idempotency-Key: replays, 409 while in flight, 422 on a different body, and 100 racers."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from portwright.client import AsyncClient, Client, InvalidRequestError
from portwright.gateway.auth import parse_key
from portwright.gateway.idempotency._middleware import _fingerprint
from tests.gateway._support import Stack


def _headers(key: str, idem: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "idempotency-key": idem}


def test_replay_returns_the_first_answer(stack: Stack, api_key: str, client: Client) -> None:
    """The same key and body again gets the original status and body, and no second job."""
    body = {"adapter": "echo", "input": {"url": stack.urls["echo"], "key": "once"}}
    first = httpx.post(f"{stack.base_url}/v1/jobs", json=body, headers=_headers(api_key, "k-1"))
    again = httpx.post(f"{stack.base_url}/v1/jobs", json=body, headers=_headers(api_key, "k-1"))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert len(client.list_jobs(adapter="echo").data) == 1


def test_replayed_error_answers_too(stack: Stack, api_key: str) -> None:
    """A 4xx answer (here 404 for an unknown adapter) is stored and replayed as well."""
    body = {"adapter": "nope", "input": {}}
    first = httpx.post(f"{stack.base_url}/v1/jobs", json=body, headers=_headers(api_key, "e"))
    again = httpx.post(f"{stack.base_url}/v1/jobs", json=body, headers=_headers(api_key, "e"))
    assert first.status_code == again.status_code == 404
    assert again.json() == first.json()


def test_same_key_other_body_is_422(stack: Stack, api_key: str) -> None:
    """Reusing a key with a different body is 422 naming the header."""
    url = f"{stack.base_url}/v1/jobs"
    body = {"adapter": "echo", "input": {"url": stack.urls["echo"], "key": "a"}}
    assert httpx.post(url, json=body, headers=_headers(api_key, "k-2")).status_code == 202
    body["input"]["key"] = "b"  # type: ignore[index]
    other = httpx.post(url, json=body, headers=_headers(api_key, "k-2"))
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert other.json()["message"].startswith("Idempotency-Key:")


def test_keys_are_per_tenant(stack: Stack, api_key: str) -> None:
    """Two tenants may use the same key string independently."""
    body = {"adapter": "echo", "input": {"url": stack.urls["echo"], "key": "t"}}
    other = stack.new_key(f"other-{secrets.token_hex(3)}")
    url = f"{stack.base_url}/v1/jobs"
    a = httpx.post(url, json=body, headers=_headers(api_key, "shared"))
    b = httpx.post(url, json=body, headers=_headers(other, "shared"))
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


def test_in_flight_key_is_409(stack: Stack, api_key: str) -> None:
    """While a request with the key is still running, the same request is 409 with Retry-After."""
    body = b'{"adapter":"echo","input":{"url":"u","key":"f"}}'
    scope = {"method": "POST", "path": "/v1/jobs", "query_string": b""}
    prefix, _ = parse_key(api_key) or ("", "")
    key_row = stack.store.accounts.key_by_prefix(prefix)
    assert key_row is not None
    claim = stack.store.idempotency.begin(
        key_row.tenant_id, "busy", _fingerprint(scope, body), lease_s=60, ttl_s=60
    )
    assert claim.outcome == "new"
    headers = {**_headers(api_key, "busy"), "content-type": "application/json"}
    response = httpx.post(f"{stack.base_url}/v1/jobs", content=body, headers=headers)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_flight"
    assert response.headers["retry-after"] == "1"


def test_bad_key_is_400(stack: Stack, client: Client) -> None:
    """An Idempotency-Key over 255 characters is 400 naming the header."""
    with pytest.raises(InvalidRequestError) as refused:
        client.submit("echo", {"url": "u", "key": "k"}, idempotency_key="x" * 300)
    assert refused.value.status == 400
    assert refused.value.message.startswith("Idempotency-Key:")


async def test_hundred_parallel_posts_make_one_job(stack: Stack, api_key: str) -> None:
    """100 concurrent POSTs with one key create exactly one job; the rest replay or get 409."""
    body = {"adapter": "echo", "input": {"url": stack.urls["echo"], "key": "race"}}
    headers = _headers(api_key, "race-1")
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=stack.base_url, limits=limits, timeout=60) as http:
        answers = await asyncio.gather(
            *(http.post("/v1/jobs", json=body, headers=headers) for _ in range(100))
        )
    statuses = sorted({a.status_code for a in answers})
    assert set(statuses) <= {202, 409}
    ids = {a.json()["id"] for a in answers if a.status_code == 202}
    assert len(ids) == 1
    async with AsyncClient(stack.base_url, api_key) as pw:
        listed = await pw.list_jobs(adapter="echo")
    assert [j.id for j in listed.data] == list(ids)


def _gateway_died_before_answering(stack: Stack, api_key: str, idem: str) -> None:
    """What a gateway SIGKILLed after creating the job but before storing its answer leaves:
    the key claimed (in flight), no answer, and — once its lease runs out — free to claim."""
    from portwright.store._schema import idempotency_keys

    prefix, _ = parse_key(api_key) or ("", "")
    key_row = stack.store.accounts.key_by_prefix(prefix)
    assert key_row is not None
    with stack.store.engine.begin() as conn:
        changed = conn.execute(
            idempotency_keys.update()
            .where(
                idempotency_keys.c.tenant_id == key_row.tenant_id,
                idempotency_keys.c.key == idem,
            )
            .values(state="in_flight", lease_until=0.0, status_code=None, headers=None, body=None)
        )
    assert changed.rowcount == 1


def test_a_retry_after_the_gateway_died_mid_request_finds_the_first_job(
    stack: Stack, api_key: str, client: Client
) -> None:
    """The R1 chaos run's doubled bookings: a gateway killed between creating the job and
    storing the answer left the key claimed; after the lease the retry made a second job.
    The retry of the same claim now names the same job id, so it gets the first job back
    (metered once); the same key with another body after the lease is a new request."""
    url = f"{stack.base_url}/v1/jobs"
    body = {"adapter": "echo", "input": {"url": stack.urls["echo"], "key": "died"}}
    first = httpx.post(url, json=body, headers=_headers(api_key, "k-died"))
    assert first.status_code == 202
    used = client.usage().jobs
    _gateway_died_before_answering(stack, api_key, "k-died")

    again = httpx.post(url, json=body, headers=_headers(api_key, "k-died"))
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"]
    assert [j.id for j in client.list_jobs(adapter="echo").data] == [first.json()["id"]]
    assert client.usage().jobs == used  # not metered twice
    replay = httpx.post(url, json=body, headers=_headers(api_key, "k-died"))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]

    _gateway_died_before_answering(stack, api_key, "k-died")
    body["input"]["key"] = "another"  # type: ignore[index]
    other = httpx.post(url, json=body, headers=_headers(api_key, "k-died"))
    assert other.status_code == 202
    assert other.json()["id"] != first.json()["id"]


async def test_the_answer_is_stored_before_the_client_gets_it(db_url: str) -> None:
    """A client that got the answer and sends the request again must get the replay: the
    answer is stored before the first byte of it goes out (sent first, a quick retry found
    the key still in flight and got a 409 — a CI rehearsal under load did)."""
    from starlette.types import Message, Receive, Scope, Send

    from portwright.gateway._principal import Principal
    from portwright.gateway.idempotency._middleware import IdempotencyMiddleware
    from portwright.store import Store

    store = Store.open(db_url)
    tenant = store.tenants.ensure("acme")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"id": "job_1"}'})

    middleware = IdempotencyMiddleware(app, store=store)
    principal = Principal(tenant.id, "key_1", "pw_test", frozenset({"jobs:write"}), "starter")
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/jobs",
        "query_string": b"",
        "headers": [(b"idempotency-key", b"k-order")],
        "state": {"principal": principal},
    }
    states: list[str | None] = []
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        # what a retry sent the moment this message arrives would find
        claim = await asyncio.to_thread(
            store.idempotency.begin,
            tenant.id,
            "k-order",
            _fingerprint(scope, b"{}"),
            lease_s=120.0,
            ttl_s=86_400.0,
        )
        states.append(claim.outcome)
        sent.append(message)

    try:
        await middleware(scope, receive, send)
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
        assert sent[1]["body"] == b'{"id": "job_1"}'
        assert states == ["done", "done"]  # never "in_flight" once the client hears back
        replay: list[Message] = []

        async def keep(message: Message) -> None:
            replay.append(message)

        await middleware(scope, receive, keep)
        assert (b"idempotent-replayed", b"true") in replay[0]["headers"]
        assert replay[1]["body"] == b'{"id": "job_1"}'
    finally:
        store.close()
