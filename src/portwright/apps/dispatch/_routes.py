"""Drivers over HTTP and WebSocket.

HTTP (API key, the caller's tenant): `PUT /v1/drivers/{id}` (add, go on or off
duty), `GET /v1/drivers`, `GET /v1/drivers/{id}/assignments`,
`POST /v1/drivers/{id}/location`, `POST /v1/drivers/{id}/orders/status`.

Driver tokens: `POST /v1/drivers/{id}/token` (API key) gives a token that opens that
driver's WebSocket and nothing else — what a driver's phone holds instead of the tenant's
API key; `DELETE /v1/drivers/{id}/tokens` revokes every token issued to the driver so far.

WebSocket `/v1/drivers/{id}/ws`, authenticated with the driver's token or an API key of
its tenant (`?access_token=` or a Bearer header). Without `?cursor=` the first message is a snapshot
(`{"type": "snapshot", "cursor": n, "assignments": [...]}`); then every
assignment event of this driver (`order.assigned`, `assignment.changed`,
`delivery.completed`, where it is the driver or the previous one) comes in the
`/v1/ws` message shape, each with its cursor. Reconnecting with
`?cursor=<last seen>` sends exactly what was missed. (An event may repeat what the
snapshot already shows: apply assignments by their `version`.) The driver sends
`{"type": "location", "lat", "lon"}` and
`{"type": "status", "order_key", "status"}`; each is answered `{"type": "ok"}` or
`{"type": "error", "field", "problem"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, fields
from typing import Any

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from portwright.apps.dispatch._service import SYNC_TOPICS, Dispatcher, DispatchError
from portwright.apps.dispatch._store import AssignmentRecord, DispatchRepository
from portwright.client.models import ErrorBody, FieldProblem
from portwright.delivery import Authenticate, Hub, Route, pump
from portwright.gateway.kernel import (
    ERROR_RESPONSES,
    SECURED,
    ApiError,
    Principal,
    current_principal,
)
from portwright.store import OutboxRecord
from portwright.webauth import ScopedTokens

__all__ = ["drivers_router"]

# A snapshot can hold thousands of assignments: a flat record's fields read directly
# (dataclasses.asdict deep-copies every value).
_ASSIGNMENT_FIELDS = tuple(f.name for f in fields(AssignmentRecord))

DRIVER_ID = r"^[A-Za-z0-9_.:-]{1,100}$"
DRIVER_TOKEN_PURPOSE = "driver"  # noqa: S105 - a token type, not a secret
DRIVER_TOKEN_TTL_S = 12 * 3600
DRIVER_TOKEN_MAX_TTL_S = 30 * 24 * 3600
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such driver (or order) in your tenant"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "not an active order of this driver"}
}


class DriverIn(BaseModel):
    name: str = Field("", max_length=200)
    available: bool = True


class LocationIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class DriverTokenIn(BaseModel):
    ttl_s: int = Field(
        DRIVER_TOKEN_TTL_S,
        ge=60,
        le=DRIVER_TOKEN_MAX_TTL_S,
        description="How long the token opens the socket, in seconds (60 s to 30 days)",
    )


class DriverTokenOut(BaseModel):
    driver_id: str
    token: str = Field(description="For `?access_token=` (or a Bearer header) on the socket")
    expires_at: float
    epoch: int = Field(description="Revoking the driver's tokens moves past this epoch")


class StatusIn(BaseModel):
    order_key: str = Field(max_length=200)
    status: str = Field(description="picked_up, in_transit, delivered or failed")


def _api_error(exc: DispatchError) -> ApiError:
    code = {404: "not_found", 409: "conflict"}.get(exc.status, "invalid")
    fields = [FieldProblem(field=exc.field, problem=exc.problem)]
    return ApiError(exc.status, code, str(exc), fields=fields)


def driver_events(driver_id: str, event: OutboxRecord) -> bool:
    """Whether `event` is pushed to `driver_id` (its own assignments, gained or lost)."""
    if event.topic not in SYNC_TOPICS:
        return False
    data = event.payload
    return data.get("driver_id") == driver_id or data.get("previous_driver_id") == driver_id


def driver_tokens(key: bytes) -> ScopedTokens:
    """The signer of driver tokens, keyed from the installation's master key."""
    return ScopedTokens(
        key,
        DRIVER_TOKEN_PURPOSE,
        ttl_s=DRIVER_TOKEN_TTL_S,
        max_ttl_s=DRIVER_TOKEN_MAX_TTL_S,
    )


def driver_keys(event: OutboxRecord) -> list[str]:
    """The drivers `event` is pushed to: the hub routes it to their sockets only."""
    if event.topic not in SYNC_TOPICS:
        return []
    data = event.payload
    return [str(d) for d in (data.get("driver_id"), data.get("previous_driver_id")) if d]


def drivers_router(
    dispatcher: Dispatcher, hub: Hub, authenticate: Authenticate, tokens: ScopedTokens
) -> APIRouter:
    repo = dispatcher.repo
    router = APIRouter(prefix="/v1", tags=["dispatch"])
    http = APIRouter(dependencies=SECURED, responses={**ERROR_RESPONSES, **NOT_FOUND})
    caller_dep = Depends(current_principal)
    gate = _TokenGate(repo, tokens)

    async def known(tenant_id: str, driver_id: str) -> None:
        if await asyncio.to_thread(repo.driver, tenant_id, driver_id) is None:
            raise ApiError(
                404,
                "not_found",
                f"no driver {driver_id}",
                fields=[FieldProblem(field="driver_id", problem="unknown")],
            )

    @http.put("/drivers/{driver_id}", summary="Add a driver, or put one on or off duty")
    async def put_driver(
        driver_id: str, body: DriverIn, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        """On duty, the driver takes waiting orders; off duty, its orders not yet picked
        up go to the others (each an AssignmentChanged event)."""
        if not re.match(DRIVER_ID, driver_id):
            raise ApiError(
                422,
                "invalid",
                "driver_id: letters, digits and _.:- only (≤ 100)",
                fields=[FieldProblem(field="driver_id", problem="bad format")],
            )
        record = await dispatcher.put_driver(
            caller.tenant_id, driver_id, name=body.name, available=body.available
        )
        return asdict(record)

    @http.get("/drivers", summary="The tenant's drivers")
    async def list_drivers(caller: Principal = caller_dep) -> dict[str, Any]:
        found = await asyncio.to_thread(repo.drivers, caller.tenant_id)
        return {"data": [asdict(d) for d in found]}

    @http.get("/drivers/{driver_id}/assignments", summary="A driver's assignments")
    async def assignments(
        driver_id: str, active: bool = False, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        await known(caller.tenant_id, driver_id)
        found = await asyncio.to_thread(
            repo.of_driver, caller.tenant_id, driver_id, active_only=active
        )
        return {"data": [asdict(a) for a in found]}

    @http.post("/drivers/{driver_id}/location", summary="Report a driver's position")
    async def location(
        driver_id: str, body: LocationIn, caller: Principal = caller_dep
    ) -> dict[str, str]:
        try:
            await dispatcher.location(caller.tenant_id, driver_id, body.lat, body.lon)
        except DispatchError as exc:
            raise _api_error(exc) from None
        return {"status": "ok"}

    @http.post(
        "/drivers/{driver_id}/orders/status",
        summary="Report progress on an order",
        responses=CONFLICT,
    )
    async def order_status(
        driver_id: str, body: StatusIn, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        try:
            record = await dispatcher.driver_status(
                caller.tenant_id, driver_id, body.order_key, body.status
            )
        except DispatchError as exc:
            raise _api_error(exc) from None
        return asdict(record)

    @router.websocket("/drivers/{driver_id}/ws")
    async def driver_socket(ws: WebSocket, driver_id: str, cursor: int | None = None) -> None:
        tenant_id, refused = await gate.holder(ws, driver_id)
        if refused:
            await ws.close(code=refused, reason=_REFUSALS[refused].format(driver_id=driver_id))
            return
        if tenant_id is not None:  # a driver token of this driver
            await ws.accept()
            with gate.tracking(tenant_id, driver_id, ws):
                await _serve_driver(ws, dispatcher, hub, tenant_id, driver_id, cursor)
            return
        principal = await authenticate(ws)
        if principal is None:
            await ws.close(code=4401, reason="invalid or missing API key or driver token")
            return
        if await asyncio.to_thread(repo.driver, principal.tenant_id, driver_id) is None:
            await ws.close(code=4404, reason=f"no driver {driver_id}")
            return
        await ws.accept()
        await _serve_driver(ws, dispatcher, hub, principal.tenant_id, driver_id, cursor)

    _token_routes(http, gate, known, caller_dep)
    router.include_router(http)
    return router


def _token_routes(
    http: APIRouter,
    gate: _TokenGate,
    known: Callable[[str, str], Awaitable[None]],
    caller_dep: Any,
) -> None:
    @http.post(
        "/drivers/{driver_id}/token",
        summary="A token that opens this driver's WebSocket (and nothing else)",
        status_code=201,
    )
    async def driver_token(
        driver_id: str, body: DriverTokenIn | None = None, caller: Principal = caller_dep
    ) -> DriverTokenOut:
        """For the driver's own app: it opens `/v1/drivers/{id}/ws` of this driver only,
        until it expires or the driver's tokens are revoked. The API refuses it."""
        driver = await asyncio.to_thread(gate.repo.driver, caller.tenant_id, driver_id)
        if driver is None:
            await known(caller.tenant_id, driver_id)  # raises the 404
            raise AssertionError("unreachable")
        ttl = (body or DriverTokenIn()).ttl_s
        token, expires = gate.tokens.issue(
            tenant_id=caller.tenant_id, subject=driver_id, epoch=driver.token_epoch, ttl_s=ttl
        )
        return DriverTokenOut(
            driver_id=driver_id, token=token, expires_at=expires, epoch=driver.token_epoch
        )

    @http.delete(
        "/drivers/{driver_id}/tokens",
        summary="Revoke every token issued to this driver so far",
    )
    async def revoke_driver_tokens(
        driver_id: str, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        """New sockets with a revoked token are refused (code 4401) by every gateway; the
        ones already open with it on this gateway are closed (4401) at once. (On another
        gateway an open one lasts until it reconnects.)"""
        epoch = await asyncio.to_thread(gate.repo.revoke_tokens, caller.tenant_id, driver_id)
        if epoch is None:
            await known(caller.tenant_id, driver_id)
            raise AssertionError("unreachable")
        gate.close_open(caller.tenant_id, driver_id)
        return {"driver_id": driver_id, "epoch": epoch}


_REFUSALS = {
    4401: "driver token revoked",
    4403: "this token is for another driver",
    4404: "no driver {driver_id}",
}


class _TokenGate:
    """Driver tokens on the socket, and the sockets they opened here (closed on revoke)."""

    def __init__(self, repo: DispatchRepository, tokens: ScopedTokens) -> None:
        self.repo = repo
        self.tokens = tokens
        self._open: dict[tuple[str, str], dict[int, WebSocket]] = {}

    async def holder(self, ws: WebSocket, driver_id: str) -> tuple[str | None, int]:
        """(tenant id, close code) for a driver token on the socket: (tenant, 0) if it
        opens this driver's socket; (None, 0) when it is no driver token (maybe a key)."""
        token = ws.query_params.get("access_token") or ""
        header = ws.headers.get("authorization", "")
        if not token and header.lower().startswith("bearer "):
            token = header[7:].strip()
        claims = self.tokens.verify(token) if token.count(".") == 2 else None
        if claims is None:
            return None, 0
        if claims.subject != driver_id:
            return claims.tenant_id, 4403
        driver = await asyncio.to_thread(self.repo.driver, claims.tenant_id, driver_id)
        if driver is None:
            return claims.tenant_id, 4404
        if driver.token_epoch != claims.epoch:
            return claims.tenant_id, 4401
        return claims.tenant_id, 0

    @contextlib.contextmanager
    def tracking(self, tenant_id: str, driver_id: str, ws: WebSocket) -> Iterator[None]:
        sockets = self._open.setdefault((tenant_id, driver_id), {})
        sockets[id(ws)] = ws
        try:
            yield
        finally:
            sockets.pop(id(ws), None)
            if not sockets:
                self._open.pop((tenant_id, driver_id), None)

    def close_open(self, tenant_id: str, driver_id: str) -> None:
        for ws in list(self._open.get((tenant_id, driver_id), {}).values()):
            _close_later(ws, 4401, _REFUSALS[4401])


_CLOSING: set[asyncio.Task[None]] = set()


def _close_later(ws: WebSocket, code: int, reason: str) -> None:
    async def close() -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code=code, reason=reason)

    task = asyncio.get_running_loop().create_task(close())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


async def _serve_driver(
    ws: WebSocket,
    dispatcher: Dispatcher,
    hub: Hub,
    tenant_id: str,
    driver_id: str,
    cursor: int | None,
) -> None:
    repo = dispatcher.repo
    snapshot = cursor is None
    if cursor is None:
        cursor = await hub.head()  # caught up, and not past an event still being committed
    # Filed under the driver's id: the hub offers it only this driver's events (one offer
    # per assignment however many drivers are connected); its history is filtered the same.
    sub = await hub.subscribe(
        tenant_id,
        lambda event: driver_events(driver_id, event),
        cursor,
        route=Route(driver_keys, driver_id),
    )
    try:
        if snapshot:
            mine = await asyncio.to_thread(repo.of_driver, tenant_id, driver_id, active_only=True)
            assignments = [{name: getattr(a, name) for name in _ASSIGNMENT_FIELDS} for a in mine]
            hello = {"type": "snapshot", "cursor": cursor, "assignments": assignments}
            await ws.send_text(json.dumps(hello))
    except BaseException as exc:
        hub.unsubscribe(sub)
        if isinstance(exc, WebSocketDisconnect | RuntimeError):
            return
        raise
    await pump(ws, hub, sub, reader=_read(ws, dispatcher, tenant_id, driver_id))


async def _read(ws: WebSocket, dispatcher: Dispatcher, tenant_id: str, driver_id: str) -> None:
    """Apply the driver's messages (location, order status) and answer each."""
    while True:
        try:
            message = json.loads(await ws.receive_text())
        except json.JSONDecodeError:
            await ws.send_text(
                json.dumps({"type": "error", "field": "message", "problem": "not JSON"})
            )
            continue
        if not isinstance(message, dict):
            message = {}
        reply: dict[str, Any] = {"type": "ok", "ref": message.get("ref")}
        try:
            reply |= await _apply(dispatcher, tenant_id, driver_id, message)
        except DispatchError as exc:
            reply = {
                "type": "error",
                "ref": message.get("ref"),
                "field": exc.field,
                "problem": exc.problem,
            }
        except (KeyError, TypeError, ValueError) as exc:
            reply = {
                "type": "error",
                "ref": message.get("ref"),
                "field": str(exc).strip("'"),
                "problem": "missing or invalid",
            }
        await ws.send_text(json.dumps(reply))


async def _apply(
    dispatcher: Dispatcher, tenant_id: str, driver_id: str, message: dict[str, Any]
) -> dict[str, Any]:
    kind = message.get("type")
    if kind == "location":
        lat, lon = float(message["lat"]), float(message["lon"])
        await dispatcher.location(tenant_id, driver_id, lat, lon)
        return {}
    if kind == "status":
        record = await dispatcher.driver_status(
            tenant_id, driver_id, str(message["order_key"]), str(message["status"])
        )
        return {"version": record.version}
    raise DispatchError("type", "expected location or status")
