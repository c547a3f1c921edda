"""A shop's order API: read an order back, update its delivery status idempotently.

``POST /api/orders/{id}/status`` requires ``Idempotency-Key``. The first
successful request with a key is applied once (ledger kind "status_update",
key = the idempotency key) and its response stored; the same key with the same
body replays that response with ``Idempotent-Replayed: true``; the same key
with another body is refused 422. Refusals (400/404/422) are not stored. An
update may carry the sender's `version` of the order's status: one older than
(or equal to) the last applied version is acknowledged but not applied (ledger
entry with ``applied: false``), so updates that arrive out of order (a replayed
backlog) never roll the order back.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portwright.sandbox._chaos import identity_of_scope
from portwright.sandbox._world import ServiceContext
from portwright.sandbox.shops._orders import DELIVERY_STATUSES, OrderBook, now_iso
from portwright.sandbox.shops._platforms import order_view

__all__ = ["StatusUpdate", "order_routes"]


class StatusUpdate(BaseModel):
    """The body of a status update."""

    model_config = ConfigDict(extra="forbid")

    status: str
    driver_id: str | None = None
    version: int | None = None


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


def order_routes(ctx: ServiceContext, book: OrderBook) -> list[Route]:
    """The /api/orders routes of one shop."""
    replies: dict[str, tuple[str, dict[str, Any]]] = {}

    async def read(request: Request) -> JSONResponse:
        order = book.orders.get(str(request.path_params["order_id"]))
        if order is None:
            return _error(404, "order not found")
        return JSONResponse(order_view(order))

    async def update(request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            return _error(400, "Idempotency-Key header is required")
        order_id = str(request.path_params["order_id"])
        raw = await request.body()
        try:
            body = StatusUpdate.model_validate_json(raw)
        except ValidationError as exc:
            return _error(422, f"invalid body: {exc.errors()[0]['msg']}")
        canonical = json.dumps([order_id, body.model_dump()], sort_keys=True)
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        if key in replies:
            first, stored = replies[key]
            if first != fingerprint:
                return _error(422, "Idempotency-Key was used with a different request")
            return JSONResponse(stored, headers={"idempotent-replayed": "true"})
        outcome = apply(order_id, body, key, identity_of_scope(request.scope))
        if isinstance(outcome, JSONResponse):
            return outcome
        replies[key] = (fingerprint, outcome)
        return JSONResponse(outcome)

    def apply(
        order_id: str, body: StatusUpdate, key: str, actor: str
    ) -> dict[str, Any] | JSONResponse:
        """Apply the update and answer the new order, or the refusal."""
        order = book.orders.get(order_id)
        if order is None:
            return _error(404, "order not found")
        if body.status not in DELIVERY_STATUSES:
            allowed = ", ".join(sorted(DELIVERY_STATUSES))
            return _error(422, f"status must be one of: {allowed}")
        applied = body.version is None or body.version > order.sync_version
        if applied:
            order.delivery_status = body.status
            order.driver_id = body.driver_id
            order.sync_version = max(order.sync_version, body.version or 0)
            order.version += 1
            order.updated_at = now_iso()
        ctx.ledger.record(
            "status_update",
            key,
            actor,
            order_id=order_id,
            status=body.status,
            driver_id=body.driver_id,
            version=body.version,
            applied=applied,
        )
        return order_view(order)

    return [
        Route("/api/orders/{order_id}", read),
        Route("/api/orders/{order_id}/status", update, methods=["POST"]),
    ]
