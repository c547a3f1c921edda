"""Structured logging: JSON lines (or console) with secrets redacted, and the ids of what is
running bound to every line logged while it runs: a request's id (and its tenant, once
authenticated), a job's job, workflow and tenant ids (and its step and attempt), a fetch's
session id. Library code logging through any structlog logger gets them too."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import MutableMapping
from typing import Any

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portwright.observability._tracing import add_trace_ids, tracing_enabled
from portwright.settings import Settings

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestContextMiddleware",
    "add_ids",
    "configure_logging",
    "redact",
]

log = structlog.get_logger("portwright.gateway")

REQUEST_ID_HEADER = "x-request-id"
_HEADER_BYTES = REQUEST_ID_HEADER.encode()
# A caller's own request id is kept when it is short and plain (it is echoed and logged).
_CALLER_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|otp|code$", re.I
)
MASK = "***"
SECRET_VALUES = re.compile(r"whsec_[A-Za-z0-9+/=]+|pw_[A-Za-z0-9]+_[A-Za-z0-9_-]+|Bearer\s+\S+")


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor masking values whose key looks like a secret."""
    for key in list(event):
        if key != "event" and SECRET_KEYS.search(key):
            event[key] = MASK
        elif isinstance(event[key], str):
            event[key] = SECRET_VALUES.sub(MASK, event[key])
    return event


def add_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A job's DBOS workflow id is its job id: a line naming one names both."""
    if "job_id" in event and "workflow_id" not in event:
        event["workflow_id"] = event["job_id"]
    return event


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer()
    )
    # The current span's trace and span ids, when traces are on (configure_tracing).
    traced = [add_trace_ids] if settings.otel_exporter != "none" or tracing_enabled() else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_ids,
            *traced,
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), format="%(message)s")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == _HEADER_BYTES:
            candidate: str = value.decode("latin-1")
            if _CALLER_ID.fullmatch(candidate):
                return candidate
            break
    return f"req_{secrets.token_hex(8)}"


class RequestContextMiddleware:
    """Give every HTTP request an id: the caller's `X-Request-ID` when it is plain (up to 128
    of `A-Z a-z 0-9 . _ : / + = -`), else a new one. It is echoed in the response's
    `X-Request-ID` and bound to every log line written while the request runs (the auth
    middleware adds the tenant). An exception nothing else handled is logged here, with those
    ids and its traceback, and answered as a JSON 500 quoting the request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_HEADER_BYTES, request_id.encode("latin-1"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                principal = scope["state"].get("principal")  # the auth middleware's, if any
                log.exception(
                    "unhandled error",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    tenant_id=getattr(principal, "tenant_id", None),
                )
                if started:
                    raise  # the answer is already on its way; the server closes it
                message = f"an unexpected error; it was logged as request {request_id}"
                answer = JSONResponse(
                    {"code": "internal", "message": message, "fields": []},
                    status_code=500,
                    headers={REQUEST_ID_HEADER: request_id},
                )
                await answer(scope, receive, send)
