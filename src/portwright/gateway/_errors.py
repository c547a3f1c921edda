"""The gateway's error answers: one JSON shape, a stable code, the field and the problem.

Library and domain exceptions are translated here, at the edge, into
`ApiError`s; handlers never build error responses by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portwright.client.models import ErrorBody, FieldProblem
from portwright.orchestrator import ConflictError
from portwright.sdk import UnknownAdapterError
from portwright.store import JobNotFoundError, is_database_unavailable

log = structlog.get_logger("portwright.gateway")

__all__ = [
    "ERROR_RESPONSES",
    "RETRY_AFTER_S",
    "ApiError",
    "UnavailableMiddleware",
    "error_response",
    "field_problems",
    "install_error_handlers",
]


class ApiError(Exception):
    """An error answer: HTTP status, stable code, message, and optional field problems."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Sequence[FieldProblem] = (),
        known: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(code=code, message=message, fields=list(fields), known=known)
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Sequence[FieldProblem] = (),
    known: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(code=code, message=message, fields=list(fields), known=known)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _location(loc: Iterable[Any], prefix: str) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header") and not prefix:
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join([prefix, *parts] if prefix else parts) or "body"


def field_problems(errors: Iterable[Any], prefix: str = "") -> list[FieldProblem]:
    """Pydantic error dicts as (field, problem) pairs, e.g. ("input.key", "Field required")."""
    return [FieldProblem(field=_location(e["loc"], prefix), problem=str(e["msg"])) for e in errors]


def _summary(problems: list[FieldProblem]) -> str:
    shown = "; ".join(f"{p.field}: {p.problem}" for p in problems[:5])
    more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"invalid request: {shown}{more}"


async def _on_request_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        problem = str(detail.get("ctx", {}).get("error", "malformed JSON"))
        return error_response(
            400,
            "malformed_json",
            f"the body is not valid JSON: {problem}",
            fields=[FieldProblem(field="body", problem=problem)],
        )
    problems = field_problems(errors)
    return error_response(422, "invalid_request", _summary(problems), fields=problems)


async def _on_api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        exc.body.model_dump(exclude_none=True), status_code=exc.status, headers=exc.headers
    )


async def _on_input_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    problems = field_problems(exc.errors(), prefix="input")
    return error_response(422, "invalid_input", _summary(problems), fields=problems)


async def _on_unknown_adapter(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnknownAdapterError)
    return error_response(
        404,
        "unknown_adapter",
        str(exc),
        fields=[FieldProblem(field="adapter", problem=f"no adapter named {exc.name!r}")],
        known=exc.known,
    )


async def _on_job_not_found(_: Request, exc: Exception) -> Response:
    return error_response(404, "job_not_found", f"no job {exc}")


async def _on_conflict(_: Request, exc: Exception) -> Response:
    return error_response(409, "conflict", str(exc))


RETRY_AFTER_S = 5
DATABASE_EXCEPTIONS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


def unavailable_response() -> JSONResponse:
    """503 + Retry-After: the database is unreachable; nothing was accepted or changed."""
    return error_response(
        503,
        "unavailable",
        "the database is unavailable: nothing was accepted or changed; retry later",
        headers={"retry-after": str(RETRY_AFTER_S)},
    )


async def _on_database_unavailable(request: Request, exc: Exception) -> Response:
    log.error("database unavailable", path=request.url.path, error=type(exc).__name__)
    return unavailable_response()


class UnavailableMiddleware:
    """The database unreachable inside a pure-ASGI middleware (authentication, rate limits,
    idempotency keys), which runs outside the routes' exception handlers, is answered as it
    is inside a route: 503 + Retry-After, not a 500. Outermost of those middlewares."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or not is_database_unavailable(exc):
                raise
            # a line, not a traceback: the cause is known and every request would repeat it
            log.error("database unavailable", path=scope["path"], error=type(exc).__name__)  # noqa: TRY400
            await unavailable_response()(scope, receive, send)


async def _on_http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(ValidationError, _on_input_validation)
    app.add_exception_handler(UnknownAdapterError, _on_unknown_adapter)
    app.add_exception_handler(JobNotFoundError, _on_job_not_found)
    app.add_exception_handler(ConflictError, _on_conflict)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    # The database unreachable (refused, dropped, pool exhausted): nothing was accepted, and a
    # client (a webhook sender above all) should come back, not give up on a 500.
    for unavailable in DATABASE_EXCEPTIONS:
        app.add_exception_handler(unavailable, _on_database_unavailable)


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Documented on every route so the OpenAPI description matches what the middleware can answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("malformed request (bad JSON, bad header)"),
    401: _doc("missing, wrong or revoked API key"),
    413: _doc("body over the size limit"),
    422: _doc("validation failed: `fields` names each field and its problem"),
    429: _doc(
        "rate limited (`rate_limited`: see RateLimit-* headers), or the API key's plan cap "
        "of unfinished jobs reached (`concurrency_limit`, at submission); see Retry-After"
    ),
    503: _doc("the database is unavailable: nothing was accepted; retry after Retry-After"),
}
