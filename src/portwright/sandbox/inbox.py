"""The sandbox inbox: where portals send one-time codes by email or SMS, and clients read them.

    POST /messages  {"to", "channel": "email"|"sms", "subject", "body"}  -> 201 {"seq", "code"}
    POST /sms       {"to", "body"}  -> 201 {"seq", "code"}: the SMS provider stand-in
                    (what `portwright.notifications.HttpSmsChannel` speaks)
    POST /bot{token}/sendMessage  {"chat_id", "text"} -> 200 {"ok": true, "result": …}: a
                    Telegram-style bot API stand-in (`BotChannel`); filed to the chat id
                    with channel "telegram"
    POST /chat/{room}  {"text"} -> 200 "ok": a Slack-style incoming-webhook stand-in
                    (`ChatWebhookChannel`); filed to `room` with channel "chat"
    GET  /messages?to=…&since_seq=…&channel=…  -> [{"seq", "to", "channel", "subject",
                                                  "body", "code", "at"}]
    GET  /           an HTML view (`table#messages tr.message[data-seq]`), ?to= filters

`code` is the first 6-digit number in the body (or subject), else null.
`since_seq` is exclusive. Ledger kind "message", key = the message seq.
Portals send through `send_message(ctx, …)`.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import time
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from portwright.resilience import Backoff
from portwright.sandbox._world import ServiceContext, ServiceSpec

__all__ = ["Message", "build_inbox", "extract_code", "send_message", "specs"]

log = logging.getLogger(__name__)
_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


class _MessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    to: str = Field(min_length=1, max_length=320)
    channel: Literal["email", "sms", "telegram", "chat"] = "email"
    subject: str = Field("", max_length=500)
    body: str = Field(max_length=20_000)


class _SmsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    to: str = Field(pattern=r"^\+[1-9]\d{6,14}$")
    body: str = Field(min_length=1, max_length=1600)


class Message(BaseModel):
    """A delivered message, as `GET /messages` returns it."""

    seq: int
    to: str
    channel: Literal["email", "sms", "telegram", "chat"]
    subject: str
    body: str
    code: str | None
    at: float


def extract_code(*texts: str) -> str | None:
    """The first 6-digit one-time code in `texts`, or None."""
    for text in texts:
        match = _CODE.search(text)
        if match:
            return match.group(1)
    return None


def build_inbox(ctx: ServiceContext) -> Starlette:
    """The "inbox" service: an append-only mailbox for every address and phone number."""
    messages: list[Message] = []

    async def post_sms(request: Request) -> JSONResponse:
        try:
            sms = _SmsIn.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                for e in exc.errors()
            ]
            return JSONResponse({"detail": errors}, status_code=422)
        return keep(_MessageIn(to=sms.to, channel="sms", body=sms.body))

    async def post_bot(request: Request) -> JSONResponse:
        try:
            data = json.loads(await request.body())
            chat_id, text = str(data["chat_id"]).strip(), str(data["text"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat_id and text"},
                status_code=400,
            )
        if not chat_id or not text or len(text) > 4096:
            return JSONResponse(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                status_code=400,
            )
        keep(_MessageIn(to=chat_id, channel="telegram", body=text))
        seq = len(messages)
        return JSONResponse({"ok": True, "result": {"message_id": seq, "chat": {"id": chat_id}}})

    async def post_chat(request: Request) -> Response:
        try:
            text = str(json.loads(await request.body())["text"])
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("invalid_payload", status_code=400)
        if not text or len(text) > 40_000:
            return PlainTextResponse("no_text", status_code=400)
        keep(_MessageIn(to=request.path_params["room"], channel="chat", body=text))
        return PlainTextResponse("ok")

    async def post_message(request: Request) -> JSONResponse:
        try:
            incoming = _MessageIn.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                for e in exc.errors()
            ]
            return JSONResponse({"detail": errors}, status_code=422)
        return keep(incoming)

    def keep(incoming: _MessageIn) -> JSONResponse:
        message = Message(
            seq=len(messages) + 1,
            to=incoming.to.strip(),
            channel=incoming.channel,
            subject=incoming.subject,
            body=incoming.body,
            code=extract_code(incoming.body, incoming.subject),
            at=time.time(),
        )
        messages.append(message)
        ctx.ledger.record("message", str(message.seq), message.to, channel=message.channel)
        return JSONResponse({"seq": message.seq, "code": message.code}, status_code=201)

    def select(request: Request) -> list[Message]:
        to = request.query_params.get("to", "").strip().lower()
        channel = request.query_params.get("channel", "")
        since = int(request.query_params.get("since_seq", "0") or 0)
        return [
            m
            for m in messages[max(since, 0) :]
            if (not to or m.to.lower() == to) and (not channel or m.channel == channel)
        ]

    async def list_messages(request: Request) -> JSONResponse:
        try:
            found = select(request)
        except ValueError:
            return JSONResponse({"detail": "since_seq must be an integer"}, status_code=400)
        return JSONResponse([m.model_dump(mode="json") for m in found])

    async def view(request: Request) -> HTMLResponse:
        try:
            found = select(request)
        except ValueError:
            found = []
        rows = "".join(
            f'<tr class="message" data-seq="{m.seq}"><td class="to">{html.escape(m.to)}</td>'
            f'<td class="channel">{m.channel}</td><td class="subject">{html.escape(m.subject)}'
            f'</td><td class="body">{html.escape(m.body)}</td>'
            f'<td class="code">{m.code or ""}</td></tr>'
            for m in reversed(found)
        )
        return HTMLResponse(
            "<!doctype html><html><head><meta charset='utf-8'><title>Sandbox inbox</title>"
            "</head><body><h1>Sandbox inbox</h1><table id='messages'><thead><tr><th>To</th>"
            "<th>Channel</th><th>Subject</th><th>Body</th><th>Code</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></body></html>"
        )

    return Starlette(
        routes=[
            Route("/", view),
            Route("/messages", post_message, methods=["POST"]),
            Route("/sms", post_sms, methods=["POST"]),
            Route("/bot{token}/sendMessage", post_bot, methods=["POST"]),
            Route("/chat/{room}", post_chat, methods=["POST"]),
            Route("/messages", list_messages, methods=["GET"]),
        ]
    )


async def send_message(
    ctx: ServiceContext,
    *,
    to: str,
    body: str,
    subject: str = "",
    channel: Literal["email", "sms"] = "email",
    attempts: int = 3,
) -> int | None:
    """Deliver a message through the world's inbox; the seq, or None if it could not be sent."""
    try:
        url = ctx.url("inbox") + "/messages"
    except KeyError:
        log.warning("sandbox world has no inbox; message to %s dropped", to)
        return None
    payload = {"to": to, "channel": channel, "subject": subject, "body": body}
    async with httpx.AsyncClient(timeout=5.0) as client:
        for attempt in range(attempts):
            try:
                response = await client.post(url, json=payload)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 201:
                seq: int = response.json()["seq"]
                return seq
            await asyncio.sleep(Backoff(0.05, 2.0).delay(attempt + 1))
    log.warning("inbox did not accept a message to %s after %d attempts", to, attempts)
    return None


def specs() -> list[ServiceSpec]:
    """The inbox service of a default world."""
    return [ServiceSpec("inbox", build_inbox)]
