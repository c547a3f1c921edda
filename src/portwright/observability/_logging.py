"""Structured logging: JSON lines (or console) with secrets redacted, and the ids of what is
running bound to every line logged while it runs: a request's id (and its tenant, once
authenticated), a job's job, workflow and tenant ids (and its step and attempt), a fetch's
session id. Library code logging through any structlog logger gets them too."""

from __future__ import annotations

import logging
import re
import secrets
import sys
import threading
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

import structlog
from pydantic import SecretBytes, SecretStr
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portwright.observability._tracing import add_trace_ids, tracing_enabled
from portwright.settings import Settings

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestContextMiddleware",
    "add_ids",
    "configure_logging",
    "install_excepthooks",
    "mask_text",
    "redact",
]

log = structlog.get_logger("portwright.gateway")

REQUEST_ID_HEADER = "x-request-id"
_HEADER_BYTES = REQUEST_ID_HEADER.encode()
# A caller's own request id is kept when it is short and plain (it is echoed and logged).
_CALLER_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

# `code` alone or as a one-time code (`otp_code`, `sms_code`), not a status or error code.
SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|otp"
    r"|(?<!status_)(?<!error_)(?<!exit_)(?<!http_)(?<!country_)(?<!reason_)code$",
    re.I,
)
MASK = "***"
# Secrets recognisable by their shape, wherever they appear in a line (an exception's message,
# a repr of headers, a URL): API keys (`pw_<prefix>_<secret>`, see gateway.auth), webhook
# secrets (`whsec_…`, Shopify's `shpss_…`), HTTP credentials (`Bearer …`, `Basic …`) and the
# password in a URL's user info (`scheme://user:password@host`), and a credential in a URL's
# query (`?token=…`, `&apiKey=…`: how hosted CDP browsers and solver APIs take keys).
SECRET_VALUES = re.compile(
    r"\bpw_[A-Za-z0-9]{8,}_[A-Za-z0-9_-]{8,}"
    r"|\b(?:whsec|shpss)_[A-Za-z0-9+/=_-]+"
    r"|\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+"
    r"|(?<=://)[^/\s:@]*:[^/\s@]+(?=@)"
    r"|(?<=[?&]token=)[^&#\s]+|(?<=[?&]key=)[^&#\s]+|(?<=[?&]apikey=)[^&#\s]+"
    r"|(?<=[?&]api_key=)[^&#\s]+|(?<=[?&]clientKey=)[^&#\s]+|(?<=[?&]auth=)[^&#\s]+",
    re.I,
)
_HANDLER_NAME = "portwright-json"
# Libraries that log through the standard library with handlers of their own: their lines are
# made to propagate to the root logger, whose only handler is ours. (DBOS adds its own console
# handler unless its logger already has one: it gets a NullHandler.)
_PROPAGATING = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "dbos")


def mask_text(text: str) -> str:
    """`text` with every secret recognisable by its shape replaced by `***`."""
    return SECRET_VALUES.sub(MASK, text)


def _masked(value: Any, depth: int = 0) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if depth <= 20 and isinstance(value, dict):  # (deeper: a self-referencing structure)
        return {
            k: MASK if isinstance(k, str) and SECRET_KEYS.search(k) else _masked(v, depth + 1)
            for k, v in value.items()
        }
    if depth <= 20 and isinstance(value, list | tuple | set | frozenset):
        return [_masked(v, depth + 1) for v in value]
    return value


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor masking secrets at any depth: values under a key that looks like
    a secret, and secret-shaped text anywhere (the event, an exception's traceback)."""
    for key in list(event):
        if key != "event" and SECRET_KEYS.search(key):
            event[key] = MASK
        else:
            event[key] = _masked(event[key])
    return event


def add_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A job's DBOS workflow id is its job id: a line naming one names both."""
    if "job_id" in event and "workflow_id" not in event:
        event["workflow_id"] = event["job_id"]
    return event


class _StdoutHandler(logging.Handler):
    """Writes each formatted record to whatever `sys.stdout` is at the time, through a
    structlog `PrintLogger`: it holds the same per-stream lock as structlog's own lines, so
    lines written at once by several threads never interleave."""

    def __init__(self) -> None:
        super().__init__()
        self.set_name(_HANDLER_NAME)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            structlog.PrintLogger(sys.stdout).msg(self.format(record))
        except Exception:  # noqa: BLE001 - logging must not raise; report as logging does
            self.handleError(record)


def configure_logging(settings: Settings | None = None) -> None:
    """The one logging setup of every entry point: JSON lines (or console lines when
    `log_json` is off) on stdout, secrets masked, tracebacks as plain text without local
    variables. Lines of the standard library's loggers (uvicorn, DBOS, asyncio, httpx, …)
    are rendered by the same processors."""
    settings = settings if settings is not None else Settings()
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        # Plain tracebacks: a rich one would print each frame's local variables.
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    # The current span's trace and span ids, when traces are on (configure_tracing).
    traced = [add_trace_ids] if settings.otel_exporter != "none" or tracing_enabled() else []
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_ids,
        *traced,
        structlog.processors.format_exc_info,  # text only: never a frame's locals
        redact,  # after the traceback is text, so it is masked too
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    for name in _PROPAGATING:
        logger = logging.getLogger(name)
        logger.handlers = [logging.NullHandler()]
        logger.propagate = True


def install_excepthooks() -> None:
    """For a process's entry point: an exception nothing caught (in the main thread or any
    other) and a Python warning become masked log lines too, not raw text on stderr."""
    crash = structlog.get_logger("portwright")

    def on_exception(
        kind: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        crash.critical("unhandled exception", exc_info=(kind, exc, tb))

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        thread = args.thread.name if args.thread is not None else None
        crash.critical("unhandled exception in a thread", thread=thread, exc_info=exc_info)

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception
    logging.captureWarnings(True)


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
