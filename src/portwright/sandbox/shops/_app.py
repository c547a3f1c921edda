"""The ASGI app of one shop: emitter control endpoints plus the order API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from portwright.sandbox._world import ServiceContext
from portwright.sandbox.shops._api import order_routes
from portwright.sandbox.shops._emitter import Emitter
from portwright.sandbox.shops._orders import OrderBook
from portwright.sandbox.shops._platforms import Platform

__all__ = ["MAX_BURST", "build_shop"]

MAX_BURST = 5000


class _StartOnRequest:
    """Pure ASGI middleware: any request starts the emitter when `enabled` is set."""

    def __init__(self, app: ASGIApp, emitter: Emitter) -> None:
        self.app = app
        self.emitter = emitter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.emitter.poke()
        await self.app(scope, receive, send)


async def _json_object(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _emit_routes(ctx: ServiceContext, emitter: Emitter) -> list[Route]:
    async def start(request: Request) -> JSONResponse:
        changes = await _json_object(request)
        if changes is None:
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        ctx.options.update(changes)
        ctx.options["enabled"] = True
        emitter.poke()
        return JSONResponse(emitter.status())

    async def stop(request: Request) -> JSONResponse:
        body = await _json_object(request) or {}
        await emitter.stop(cancel_pending=bool(body.get("cancel_pending", False)))
        return JSONResponse(emitter.status())

    async def burst(request: Request) -> JSONResponse:
        body = await _json_object(request)
        count = body.get("count") if body is not None else None
        if not isinstance(count, int) or not 1 <= count <= MAX_BURST:
            detail = f"count must be an integer from 1 to {MAX_BURST}"
            return JSONResponse({"error": detail}, status_code=422)
        if not ctx.options.get("target_url"):
            return JSONResponse({"error": "options.target_url is not set"}, status_code=409)
        events = [emitter.next_event() for _ in range(count)]
        tasks = [emitter.dispatch(event) for event in events]
        reply: dict[str, Any] = {"queued": count, "event_ids": [e.id for e in events]}
        if body is not None and body.get("wait"):
            reply["delivered"] = sum(await asyncio.gather(*tasks))
        return JSONResponse(reply, status_code=200 if "delivered" in reply else 202)

    async def status(_: Request) -> JSONResponse:
        return JSONResponse(emitter.status())

    return [
        Route("/_emit/start", start, methods=["POST"]),
        Route("/_emit/stop", stop, methods=["POST"]),
        Route("/_emit/burst", burst, methods=["POST"]),
        Route("/_emit/status", status),
    ]


def build_shop(platform: Platform) -> Callable[[ServiceContext], ASGIApp]:
    """A `ServiceSpec.build` for `platform`."""

    def build(ctx: ServiceContext) -> ASGIApp:
        book = OrderBook(lambda number: platform.order_id(ctx.seed, number))
        emitter = Emitter(ctx, platform, book)
        app = Starlette(routes=[*_emit_routes(ctx, emitter), *order_routes(ctx, book)])
        app.state.emitter = emitter
        app.state.book = book
        return _StartOnRequest(app, emitter)

    return build
