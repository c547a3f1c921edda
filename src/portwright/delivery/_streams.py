"""Realtime routes: SSE `/v1/stream` and WebSocket `/v1/ws`, per tenant and per job.

Both resume from a cursor: SSE's `Last-Event-ID` (or `?cursor=`), the
WebSocket's `?cursor=`, or `?updated_since=<epoch seconds>`. Every message
carries its cursor; a client that reconnects with the last one it saw gets
exactly what it missed. WebSockets authenticate with `?access_token=<API key>`
or an `Authorization: Bearer` header (browsers cannot set headers on them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from portwright.delivery._hub import Hub, Subscription
from portwright.gateway.kernel import SECURED, Principal, current_principal
from portwright.store import OutboxRecord, Store

__all__ = ["authenticate_ws", "event_message", "streams_router"]

HEARTBEAT_S = 15.0
DISCONNECT_CHECK_S = 1.0
Authenticate = Callable[[WebSocket], Awaitable[Principal | None]]


def event_message(event: OutboxRecord) -> dict[str, object]:
    return {
        "cursor": event.id,
        "event_id": event.event_id,
        "type": event.topic,
        "subject": event.subject,
        "platform": event.platform,
        "data": event.payload,
        "at": event.created_at,
    }


def _matcher(job_id: str | None, topics: list[str]) -> Callable[[OutboxRecord], bool]:
    def match(event: OutboxRecord) -> bool:
        if job_id is not None and event.subject != job_id:
            return False
        return not topics or any(event.topic.startswith(t) for t in topics)

    return match


async def _start_cursor(
    store: Store, hub: Hub, tenant_id: str, cursor: int | None, updated_since: float | None
) -> int:
    if cursor is not None:
        return cursor
    if updated_since is not None:
        return await asyncio.to_thread(
            store.outbox.since_updated, updated_since, tenant_id=tenant_id
        )
    return await hub.head()  # "from now on": not past an event still being committed


def authenticate_ws(store: Store) -> Authenticate:
    """Verify a WebSocket's API key the way the HTTP middleware does."""
    from portwright.gateway.kernel import parse_key, verify_secret

    async def check(ws: WebSocket) -> Principal | None:
        token = ws.query_params.get("access_token")
        header = ws.headers.get("authorization", "")
        if not token and header.lower().startswith("bearer "):
            token = header[7:].strip()
        parsed = parse_key(token) if token else None
        if parsed is None:
            return None
        prefix, secret = parsed
        row = await asyncio.to_thread(store.accounts.key_by_prefix, prefix)
        if row is None or row.revoked_at is not None or not verify_secret(secret, row.secret_hash):
            return None
        return Principal(row.tenant_id, row.id, row.prefix, row.scope_set, row.plan)

    return check


async def _until_client_leaves(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


async def pump(
    ws: WebSocket,
    hub: Hub,
    sub: Subscription,
    *,
    reader: Coroutine[Any, Any, None] | None = None,
    wanted: Callable[[OutboxRecord], bool] | None = None,
) -> None:
    """Send a subscription's events (those `wanted`) until the client leaves or the hub
    drops it. The client's side is read at the same time by `reader` (default: ignored), so
    a client that leaves while the stream is quiet frees its subscription at once."""
    left = asyncio.create_task(reader if reader is not None else _until_client_leaves(ws))
    try:
        while True:
            upcoming = asyncio.create_task(sub.next())
            await asyncio.wait({upcoming, left}, return_when=asyncio.FIRST_COMPLETED)
            if not upcoming.done():
                upcoming.cancel()
                return
            # One wake-up for all that is queued: the hub hands events over in batches.
            for event in [upcoming.result(), *sub.drain()]:
                if event is None:
                    await ws.close(code=4000, reason="resync from your last cursor")
                    return
                if wanted is None or wanted(event):
                    await ws.send_text(json.dumps(event_message(event)))
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        left.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await left  # a client that vanished is not an error
        hub.unsubscribe(sub)


def streams_router(store: Store, hub: Hub, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(tags=["realtime"])

    @router.get("/v1/stream", dependencies=SECURED, include_in_schema=False)
    async def stream(
        request: Request,
        caller: Principal = Depends(current_principal),  # noqa: B008 - FastAPI dependency
        job_id: str | None = None,
        topic: list[str] = Query(default_factory=list),  # noqa: B008
        cursor: int | None = None,
        updated_since: float | None = None,
    ) -> StreamingResponse:
        """The tenant's events (or one job's) as SSE, resumable with `Last-Event-ID`."""
        last = request.headers.get("last-event-id")
        if last and last.isdigit():
            cursor = int(last)
        start = await _start_cursor(store, hub, caller.tenant_id, cursor, updated_since)
        sub = await hub.subscribe(caller.tenant_id, _matcher(job_id, topic), start)

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                quiet = 0.0
                while True:
                    try:
                        event = await asyncio.wait_for(sub.next(), timeout=DISCONNECT_CHECK_S)
                    except TimeoutError:
                        # A client that left is noticed within a second, not at the next
                        # write, so its subscription and connection are freed promptly.
                        if await request.is_disconnected():
                            return
                        quiet += DISCONNECT_CHECK_S
                        if quiet >= HEARTBEAT_S:
                            quiet = 0.0
                            yield b": keep-alive\n\n"
                        continue
                    quiet = 0.0
                    if event is None:
                        return
                    data = json.dumps(event_message(event))
                    yield f"id: {event.id}\nevent: {event.topic}\ndata: {data}\n\n".encode()
            finally:
                hub.unsubscribe(sub)

        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    @router.websocket("/v1/ws")
    async def socket(
        ws: WebSocket,
        job_id: str | None = None,
        cursor: int | None = None,
        updated_since: float | None = None,
    ) -> None:
        principal = await authenticate(ws)
        if principal is None:
            await ws.close(code=4401, reason="invalid or missing API key")
            return
        await ws.accept()
        start = await _start_cursor(store, hub, principal.tenant_id, cursor, updated_since)
        sub = await hub.subscribe(principal.tenant_id, _matcher(job_id, []), start)
        await pump(ws, hub, sub)

    return router
