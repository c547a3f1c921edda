"""Live pages: a running job's page published for the console, and who controls it.

Design: the job's step publishes where its page can be reached over CDP — the
browser's endpoint (a local Chromium's loopback debugging port, or the URL a
remote CDP provider handed out) and the page's target id — in the job's
durable notes (`LIVE_NOTE`). The console, in this process or any other,
reads the note, opens its own CDP connection (`CdpSession`), attaches to the
target, streams `Page.startScreencast` frames and, while an operator holds
control, sends `Input.*` events. Control is another note (`CONTROL_NOTE`):
while an operator holds it, `LivePage.checkpoint()` waits; on hand-back the
step reads the page again and continues from where the operator left it.
The same works for a remote browser: whoever can reach the endpoint can attach.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import websockets
from playwright.async_api import Page

from portwright.engines.browser._providers import cdp_endpoint

__all__ = [
    "CONTROL_NOTE",
    "LIVE_NOTE",
    "CdpError",
    "CdpSession",
    "LivePage",
    "LiveTarget",
    "Notes",
    "control_of",
    "websocket_url",
]

LIVE_NOTE = "live_browser"
CONTROL_NOTE = "live_control"


class Notes(Protocol):
    """Durable per-job notes (a step context offers these)."""

    async def remember(self, key: str, value: Any) -> None: ...

    async def recall(self, key: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class LiveTarget:
    """Where a job's page can be attached to over CDP."""

    endpoint: str
    target_id: str
    published_at: float

    def as_note(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "target_id": self.target_id,
            "published_at": self.published_at,
        }

    @classmethod
    def from_note(cls, note: object) -> LiveTarget | None:
        if not isinstance(note, Mapping) or not note.get("endpoint") or not note.get("target_id"):
            return None
        return cls(str(note["endpoint"]), str(note["target_id"]), float(note["published_at"]))


def control_of(note: object) -> str:
    """Who drives the page: "operator" (an operator took over) or "automation"."""
    if isinstance(note, Mapping) and note.get("holder") == "operator":
        return "operator"
    return "automation"


class LivePage:
    """A step's page published for watching and take-over; `async with` withdraws it."""

    def __init__(self, notes: Notes, page: Page, *, poll_s: float = 0.5) -> None:
        self.notes = notes
        self.page = page
        self.poll_s = poll_s
        self.target: LiveTarget | None = None

    async def publish(self) -> LiveTarget | None:
        """Publish the page (None when its browser has no reachable CDP endpoint)."""
        endpoint = cdp_endpoint(self.page.context.browser) if self.page.context.browser else None
        if endpoint is None:
            return None
        cdp = await self.page.context.new_cdp_session(self.page)
        try:
            info = await cdp.send("Target.getTargetInfo")
        finally:
            with contextlib.suppress(Exception):
                await cdp.detach()
        self.target = LiveTarget(endpoint, str(info["targetInfo"]["targetId"]), time.time())
        await self.notes.remember(LIVE_NOTE, self.target.as_note())
        return self.target

    async def withdraw(self) -> None:
        if self.target is not None:
            await self.notes.remember(LIVE_NOTE, None)
            self.target = None

    async def __aenter__(self) -> LivePage:
        await self.publish()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.withdraw()

    async def held(self) -> bool:
        """Whether an operator holds control right now."""
        return control_of(await self.notes.recall(CONTROL_NOTE)) == "operator"

    async def checkpoint(self) -> bool:
        """Wait while an operator holds control; True if it waited (re-read the page then)."""
        waited = False
        while await self.held():
            waited = True
            await asyncio.sleep(self.poll_s)
        return waited


class CdpError(RuntimeError):
    """The CDP endpoint refused a command or went away."""


async def websocket_url(endpoint: str, *, timeout_s: float = 30.0) -> str:
    """The browser-level `ws://` URL of a CDP endpoint (`http://host:port` is resolved)."""
    if endpoint.startswith(("ws://", "wss://")):
        return endpoint
    async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as client:
        response = await client.get(endpoint.rstrip("/") + "/json/version")
        response.raise_for_status()
        return str(response.json()["webSocketDebuggerUrl"])


class CdpSession:
    """A flat CDP session on one page target over its own browser connection.

    `events()` yields the target's events; `send()` runs one command on it.
    """

    def __init__(self, ws: Any, session_id: str) -> None:
        self._ws = ws
        self.session_id = session_id
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=64)
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def attach(
        cls, target: LiveTarget, *, timeout_s: float = 30.0
    ) -> AsyncIterator[CdpSession]:
        """Connect to `target`'s browser and attach to the page (detached on exit)."""
        url = await websocket_url(target.endpoint, timeout_s=timeout_s)
        async with websockets.connect(url, max_size=32 * 1024 * 1024, open_timeout=timeout_s) as ws:
            browser = cls(ws, "")
            browser._reader = asyncio.create_task(browser._read())
            try:
                found = await browser.send(
                    "Target.attachToTarget", {"targetId": target.target_id, "flatten": True}
                )
                session = cls(ws, str(found["sessionId"]))
                session._ids = browser._ids
                session._waiting = browser._waiting
                session._events = browser._events
                browser.session_id = session.session_id
                yield session
            finally:
                browser._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await browser._reader

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    future = self._waiting.pop(int(message["id"]), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("sessionId") == self.session_id or (
                    message.get("method") == "Target.detachedFromTarget"
                ):
                    if self._events.full():
                        with contextlib.suppress(asyncio.QueueEmpty):
                            self._events.get_nowait()  # drop the oldest frame, never block
                    self._events.put_nowait(message)
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(CdpError("the CDP connection closed"))
            self._events.put_nowait(None)

    async def send(
        self, method: str, params: Mapping[str, Any] | None = None, *, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Run one command on this session; its result, or CdpError."""
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": dict(params or {})}
        if self.session_id:
            message["sessionId"] = self.session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            await self._ws.send(json.dumps(message))
        except Exception as exc:
            self._waiting.pop(message_id, None)
            raise CdpError(f"{method}: the CDP connection closed") from exc
        answer = await asyncio.wait_for(future, timeout_s)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error'].get('message', answer['error'])}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The target's events until it detaches or the connection closes."""
        while True:
            event = await self._events.get()
            if event is None or event.get("method") == "Target.detachedFromTarget":
                return
            yield event
