"""Realtime: SSE and WebSocket per tenant and per job, resumed from a cursor after a gap,
fanned out across two gateways that share nothing but the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from portwright.gateway import create_app
from tests.delivery.conftest import FAST, Stack
from tests.gateway._support import ServerThread

TIMEOUT = 30.0


@pytest.fixture
def second_gateway(stack: Stack) -> Iterator[str]:
    """Another gateway app on the same database, with its own hub, relay and port."""
    server = ServerThread(
        create_app(stack.service, stack.settings, delivery_policy=FAST), stack.settings
    ).start()
    try:
        yield server.url
    finally:
        server.stop()


async def _sse(
    client: httpx.AsyncClient, url: str, want: int, headers: dict[str, str]
) -> list[tuple[int, dict[str, object]]]:
    """Read `want` SSE events: (id, message)."""
    out: list[tuple[int, dict[str, object]]] = []

    async def read() -> None:
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            event_id = 0
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    out.append((event_id, json.loads(line[6:])))
                    if len(out) == want:
                        return

    await asyncio.wait_for(read(), TIMEOUT)
    return out


def _emit(stack: Stack, tenant_id: str, name: str, subject: str = "") -> None:
    stack.service.store.outbox.append(
        event_id=name, topic="job.updated", tenant_id=tenant_id, subject=subject,
        payload={"name": name},
    )  # fmt: skip


# The hub is engine-agnostic (it tails the outbox by id); Postgres is covered by the
# relay-kill test, so this one runs on SQLite only to keep the suite's cost down.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sse_and_websocket_resume_after_a_gap_across_two_gateways(
    stack: Stack, second_gateway: str
) -> None:
    """A tenant's SSE stream sees only its events; after a gap it resumes from Last-Event-ID,
    `?cursor=` or `?updated_since=` with exactly what it missed; a WebSocket on another
    gateway, filtered to one job, gets that job's events written through the first, live
    and after reconnecting with its cursor."""
    key, tenant_id = stack.new_key()
    _, other_tenant = stack.new_key()
    auth = {"authorization": f"Bearer {key}"}
    base = stack.base_url
    start = stack.service.store.outbox.last_id()
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        reader = asyncio.create_task(_sse(client, f"{base}/v1/stream?cursor={start}", 3, auth))
        for name in ("a1", "a2"):
            _emit(stack, tenant_id, name)
        _emit(stack, other_tenant, "b1")
        _emit(stack, tenant_id, "a3")
        first = await reader
        assert [m["event_id"] for _, m in first] == ["a1", "a2", "a3"], "tenant B stays out"
        last = first[-1][0]

        _emit(stack, tenant_id, "a4")  # the gap: nobody is listening
        _emit(stack, tenant_id, "a5")
        a5_at = stack.service.store.outbox.since(last, tenant_id=tenant_id)[-1].created_at
        resumed = await _sse(client, f"{base}/v1/stream", 2, {**auth, "last-event-id": str(last)})
        assert [m["event_id"] for _, m in resumed] == ["a4", "a5"]
        by_cursor = await _sse(client, f"{base}/v1/stream?cursor={last}", 2, auth)
        assert [m["event_id"] for _, m in by_cursor] == ["a4", "a5"]
        since = await _sse(client, f"{second_gateway}/v1/stream?updated_since={a5_at!r}", 1, auth)
        assert [m["event_id"] for _, m in since] == ["a5"]

    ws_base = second_gateway.replace("http://", "ws://")
    url = f"{ws_base}/v1/ws?access_token={key}&job_id=job_x&cursor={resumed[-1][0]}"
    async with connect(url, open_timeout=TIMEOUT) as ws:
        _emit(stack, tenant_id, "x1", subject="job_x")
        _emit(stack, tenant_id, "y1", subject="job_y")
        _emit(stack, tenant_id, "x2", subject="job_x")
        live = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in range(2)]
    assert [m["event_id"] for m in live] == ["x1", "x2"], "only job_x, via the other gateway"
    _emit(stack, tenant_id, "x3", subject="job_x")  # the gap
    again = f"{ws_base}/v1/ws?access_token={key}&job_id=job_x&cursor={live[-1]['cursor']}"
    async with connect(again, open_timeout=TIMEOUT) as ws:
        missed = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert missed["event_id"] == "x3"
    with pytest.raises(Exception, match="403"):  # refused before the handshake
        async with connect(f"{ws_base}/v1/ws?access_token=pw_bad", open_timeout=TIMEOUT) as ws:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
