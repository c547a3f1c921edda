"""Server-sent events: a `change` event whenever anything the operator may see changes.

Pages re-fetch their live region (`?fragment=1`) on each event, so nothing is
reloaded and the markup stays server-rendered. A stream ends after
`STREAM_S`; the browser's EventSource reconnects by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import StreamingResponse

from portwright.console._auth import Operator, need
from portwright.store import Store

__all__ = ["live_router"]

POLL_S = 0.4
STREAM_S = 25.0
HEARTBEAT_S = 10.0


def live_router(store: Store) -> APIRouter:
    router = APIRouter()

    @router.get("/live")
    async def live(
        request: Request, op: Annotated[Operator, Depends(need("viewer"))]
    ) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            yield "retry: 500\n\n"
            last = None
            started = beat = time.monotonic()
            while time.monotonic() - started < STREAM_S:
                if await request.is_disconnected():
                    return
                current = await asyncio.to_thread(store.console.fingerprint, tenant_id=op.tenant_id)
                if last is not None and current != last:
                    yield f"event: change\ndata: {time.time():.3f}\n\n"
                    beat = time.monotonic()
                elif time.monotonic() - beat > HEARTBEAT_S:
                    yield ": keep-alive\n\n"
                    beat = time.monotonic()
                last = current
                await asyncio.sleep(POLL_S)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    return router
