"""The live browser: watch a running browser job and take over its keyboard and mouse.

A browser step publishes its page (CDP endpoint and target id) in the job's
notes (`portwright.engines.browser.LivePage`). The page here opens a
WebSocket to this process, which attaches to that target over its own CDP
connection — wherever the browser runs, local or a remote CDP provider —
streams `Page.startScreencast` frames to the page and, while an operator holds
control, turns the page's mouse and key events into `Input.*` commands.
"Take over" and "Hand back" are audited; while an operator holds control the
job's step waits, and on hand-back it continues from the page as left.

What the operator changed is kept: at take-over the page's form fields (inputs,
selects, text areas; password fields and secret-looking names masked) are read
over CDP, and at hand-back read again; the fields whose value changed go on the
job's timeline (the `live.release` event's `changed`: field → [before, after])
and into its audit row, as the record of what the operator put in the job's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket, WebSocketDisconnect
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import COOKIE, Operator, need, token_hash
from portwright.console._render import PREFIX, page
from portwright.console._takeover import page_fields, release_note
from portwright.engines.browser import (
    CONTROL_NOTE,
    LIVE_NOTE,
    CdpError,
    CdpSession,
    LiveTarget,
    control_of,
)
from portwright.orchestrator import JobService
from portwright.store import JobRecord, Store

__all__ = ["browser_live_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
Acting = Annotated[Operator, Depends(need("operator"))]
ENDED = ("succeeded", "failed", "cancelled")
MOUSE_EVENTS = {"mousePressed", "mouseReleased", "mouseMoved", "mouseWheel"}
KEY_EVENTS = {"keyDown", "keyUp"}
BROWSER_EVIDENCE = frozenset({"screenshot", "dom", "trace", "step-log"})
SCREENCAST = {"format": "jpeg", "quality": 70, "everyNthFrame": 1}


def browser_possible(store: Store, job: JobRecord) -> bool:
    """False for a job parked on an escalation with no page now and no browser evidence
    (an HTTP-only job); a job that has not parked may still open a browser."""
    if LiveTarget.from_note(store.jobs.recall(job.id, LIVE_NOTE)) is not None:
        return True
    if any(e.kind in BROWSER_EVIDENCE for e in store.jobs.evidence(job.id)):
        return True
    return not store.jobs.escalations(job_id=job.id, status="unresolved")


def browser_live_router(service: JobService) -> APIRouter:  # noqa: PLR0915 (one route each)
    router = APIRouter()
    store = service.store

    async def job_or_404(job_id: str, op: Operator) -> JobRecord:
        try:
            return await service.get(job_id, tenant_id=op.tenant_id)
        except LookupError as exc:
            raise HTTPException(404, f"no job {job_id}") from exc

    async def notes(job_id: str) -> tuple[LiveTarget | None, dict[str, Any]]:
        target = LiveTarget.from_note(await asyncio.to_thread(store.jobs.recall, job_id, LIVE_NOTE))
        control = await asyncio.to_thread(store.jobs.recall, job_id, CONTROL_NOTE)
        return target, control if isinstance(control, dict) else {"holder": "automation"}

    @router.get("/jobs/{job_id}/live")
    async def live_page(request: Request, job_id: str, op: Viewer) -> Response:
        job = await job_or_404(job_id, op)
        target, control = await notes(job_id)
        return page(
            request, "browser_live.html", op, nav="jobs", job=job, target=target,
            control=control, holder=control_of(control), ended=job.status in ENDED,
        )  # fmt: skip

    async def set_control(job: JobRecord, op: Operator, holder: str, reason: str) -> None:
        target, before = await notes(job.id)
        action = f"live.{'take' if holder == 'operator' else 'release'}"
        fields = await page_fields(target)  # kept at take-over, compared at hand-back
        meta, reason = release_note(before, fields, reason) if action == "live.release" else (
            {}, reason)  # fmt: skip
        await service.note(job.id, action, actor=op.actor, reason=reason, meta=meta)
        after = {"holder": holder, "actor": op.actor, "since": time.time(), "fields": fields}
        await asyncio.to_thread(store.jobs.remember, job.id, CONTROL_NOTE, after)
        await asyncio.to_thread(
            store.audit.record,
            actor=op.actor,
            action=action,
            target_type="job",
            target_id=job.id,
            before={"holder": control_of(before), "actor": before.get("actor")},
            after={"holder": holder, "actor": op.actor, **meta},
            reason=reason,
            tenant_id=job.tenant_id,
        )

    @router.post("/jobs/{job_id}/live/take")
    async def take(job_id: str, op: Acting) -> Response:
        job = await job_or_404(job_id, op)
        if job.status in ENDED:
            raise HTTPException(409, f"job {job_id} already ended ({job.state})")
        if not await asyncio.to_thread(browser_possible, store, job):
            raise HTTPException(
                409,
                f"job {job_id} waits for a decision and has no browser (its steps are plain "
                "HTTP): there is nothing to take over; decide its escalation instead",
            )
        await set_control(job, op, "operator", "operator took over the live browser")
        return RedirectResponse(f"{PREFIX}/jobs/{job_id}/live", status_code=303)

    @router.post("/jobs/{job_id}/live/release")
    async def release(job_id: str, op: Acting) -> Response:
        job = await job_or_404(job_id, op)
        await set_control(job, op, "automation", "operator handed the browser back")
        return RedirectResponse(f"{PREFIX}/jobs/{job_id}/live", status_code=303)

    async def operator_of(ws: WebSocket) -> Operator | None:
        token = ws.cookies.get(COOKIE)
        if not token:
            return None
        found = await asyncio.to_thread(store.console.session, token_hash(token))
        if found is None:
            return None
        session, rec = found
        return Operator(rec.id, rec.email, rec.role, rec.tenant_id, session.csrf_token)

    @router.websocket("/jobs/{job_id}/live/ws")
    async def stream(ws: WebSocket, job_id: str) -> None:
        op = await operator_of(ws)
        host = ws.headers.get("host", "")
        origin = ws.headers.get("origin", "")
        same_origin = origin.split("://", 1)[-1] == host
        token = ws.query_params.get("csrf", "")
        if op is None or not same_origin or not hmac.compare_digest(token, op.csrf_token):
            await ws.close(code=4403)  # no session, another site, or no CSRF token
            return
        try:
            await service.get(job_id, tenant_id=op.tenant_id)
        except LookupError:
            await ws.close(code=4404)
            return
        await ws.accept()
        await LiveStream(ws, service, job_id, op).run()

    return router


class LiveStream:
    """One viewer's WebSocket: frames out, input in (only while an operator holds control)."""

    def __init__(self, ws: WebSocket, service: JobService, job_id: str, op: Operator) -> None:
        self.ws = ws
        self.service = service
        self.job_id = job_id
        self.op = op
        self.inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=1024)
        self._control_read_at = float("-inf")
        self._in_control_cached = False

    async def status(self, state: str, text: str) -> None:
        await self.ws.send_json({"type": "status", "state": state, "text": text})

    async def run(self) -> None:
        reader = asyncio.create_task(self._read())
        try:
            while not reader.done():
                store = self.service.store
                note = await asyncio.to_thread(store.jobs.recall, self.job_id, LIVE_NOTE)
                target = LiveTarget.from_note(note)
                if target is None:
                    job = await self.service.get(self.job_id)
                    if job.status in ENDED:
                        await self.ws.send_json({"type": "status", "state": "ended",
                                                 "text": f"The job ended ({job.state}).",
                                                 "job_state": job.state})  # fmt: skip
                        return
                    await self.status("waiting", "No browser step is running right now.")
                    await self._idle(reader, 1.0)
                    continue
                try:
                    await self._attached(target, reader)
                except (CdpError, OSError, TimeoutError) as exc:
                    await self.status("waiting", f"Cannot reach the browser yet ({exc}).")
                    await self._idle(reader, 1.0)
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _idle(self, reader: asyncio.Task[None], seconds: float) -> None:
        """Wait, dropping input (no page to send it to), until `seconds` pass or the viewer
        leaves."""
        deadline = time.monotonic() + seconds
        while not reader.done() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.inbox.get(), max(0.05, deadline - time.monotonic()))

    async def _read(self) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await self.ws.receive_json()
                if isinstance(message, dict) and not self.inbox.full():
                    self.inbox.put_nowait(message)
        self.inbox.put_nowait(None)

    async def _attached(self, target: LiveTarget, reader: asyncio.Task[None]) -> None:
        async with CdpSession.attach(target, timeout_s=30.0) as cdp:
            await cdp.send("Page.startScreencast", SCREENCAST)
            await self.status("attached", "Watching the job's browser.")
            frames = asyncio.create_task(self._frames(cdp))
            inputs = asyncio.create_task(self._inputs(cdp))
            try:
                await asyncio.wait({frames, inputs, reader}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (frames, inputs):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                with contextlib.suppress(Exception):
                    await cdp.send("Page.stopScreencast", timeout_s=2.0)
        if not reader.done():
            await self.status("waiting", "The browser step ended; waiting for the next one.")
            await asyncio.sleep(0.5)

    async def _frames(self, cdp: CdpSession) -> None:
        async for event in cdp.events():
            if event.get("method") != "Page.screencastFrame":
                continue
            params = event["params"]
            await cdp.send("Page.screencastFrameAck", {"sessionId": params["sessionId"]})
            await self.ws.send_json({"type": "frame", "data": params["data"],
                                     "meta": params.get("metadata", {})})  # fmt: skip

    async def _inputs(self, cdp: CdpSession) -> None:
        applied = 0
        while True:
            message = await self.inbox.get()
            if message is None:
                return
            applied += 1
            command = to_cdp(message)
            if not self.op.has("operator") or not await self._in_control():
                await self.status("attached", "Take over first to use the keyboard and mouse.")
            elif command is not None:
                await cdp.send(*command)
            # Tells the page how far its input got (it waits for this before handing back).
            await self.ws.send_json({"type": "applied", "count": applied})

    async def _in_control(self) -> bool:
        """Whether an operator holds control (read at most every half second)."""
        now = time.monotonic()
        if now - self._control_read_at > 0.5:
            store = self.service.store
            note = await asyncio.to_thread(store.jobs.recall, self.job_id, CONTROL_NOTE)
            self._in_control_cached = control_of(note) == "operator"
            self._control_read_at = now
        return self._in_control_cached


def to_cdp(message: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The `Input.*` command for one event from the page (None when it is not one)."""
    kind = message.get("type")
    if kind == "mouse" and message.get("event") in MOUSE_EVENTS:
        params: dict[str, Any] = {
            "type": message["event"],
            "x": float(message.get("x", 0)),
            "y": float(message.get("y", 0)),
            "modifiers": int(message.get("modifiers", 0)),
        }
        if message["event"] == "mouseWheel":
            params |= {"deltaX": float(message.get("deltaX", 0)),
                       "deltaY": float(message.get("deltaY", 0))}  # fmt: skip
        elif message["event"] != "mouseMoved":
            params |= {"button": str(message.get("button", "left")),
                       "clickCount": int(message.get("clickCount", 1))}  # fmt: skip
        return "Input.dispatchMouseEvent", params
    if kind == "key" and message.get("event") in KEY_EVENTS:
        text = str(message.get("text", ""))[:1]
        down = message["event"] == "keyDown"
        params = {
            "type": ("keyDown" if text else "rawKeyDown") if down else "keyUp",
            "key": str(message.get("key", ""))[:32],
            "code": str(message.get("code", ""))[:32],
            "windowsVirtualKeyCode": int(message.get("keyCode", 0)),
            "modifiers": int(message.get("modifiers", 0)),
        }
        if down and text:
            params["text"] = text
        return "Input.dispatchKeyEvent", params
    if kind == "text" and isinstance(message.get("text"), str):
        return "Input.insertText", {"text": message["text"][:2000]}
    return None
