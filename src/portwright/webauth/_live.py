"""Server-sent events for server-rendered pages: a `change` event whenever what a viewer may
see changes.

Pages re-fetch their live region (`?fragment=1`) on each event, so nothing is reloaded and
the markup stays server-rendered. A stream ends after `STREAM_S`; the browser's
EventSource reconnects by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import StreamingResponse

__all__ = ["change_stream"]

POLL_S = 0.4
STREAM_S = 25.0
HEARTBEAT_S = 10.0


def change_stream(request: Request, fingerprint: Callable[[], object]) -> StreamingResponse:
    """An event stream that polls `fingerprint` (a blocking read, run off the loop) and
    sends `change` when it differs from the last reading, a keep-alive in between."""

    async def events() -> AsyncIterator[str]:
        yield "retry: 500\n\n"
        last = None
        started = beat = time.monotonic()
        while time.monotonic() - started < STREAM_S:
            if await request.is_disconnected():
                return
            current = await asyncio.to_thread(fingerprint)
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
