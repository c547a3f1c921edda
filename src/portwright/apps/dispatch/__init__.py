"""Dispatch (scenario 5): shop webhooks → normalized domain events → orders assigned to
drivers → pushed to drivers over WebSocket → synced back to each platform.

Domain events (outbox topics): `order.created` (OrderCreated), `order.assigned`
(OrderAssigned), `driver.location_updated` (DriverLocationUpdated),
`assignment.changed` (AssignmentChanged), `delivery.completed` (DeliveryCompleted).
A platform's status sync is a `shop-status` webhook endpoint of the tenant
(`POST /v1/webhook-endpoints {"kind": "shop-status", "platform": …, "url": …,
"topics": SYNC_TOPICS}`): the relay's per-endpoint breaker, retries, dead letters
and replay apply to it.

    from portwright.apps.dispatch import mount_dispatch
    mount_dispatch(app, dispatcher, delivery)     # what the gateway's create_app does
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portwright.apps.dispatch._normalize import NORMALIZERS, NormalizeError, ShopChange, normalize
from portwright.apps.dispatch._service import (
    ASSIGNMENT_CHANGED,
    DELIVERY_COMPLETED,
    DRIVER_LOCATION_UPDATED,
    DRIVER_STATUSES,
    ORDER_ASSIGNED,
    ORDER_CREATED,
    SYNC_TOPICS,
    Dispatcher,
    DispatchError,
    order_key,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from portwright.delivery import DeliveryParts

__all__ = [
    "ASSIGNMENT_CHANGED",
    "DELIVERY_COMPLETED",
    "DRIVER_LOCATION_UPDATED",
    "DRIVER_STATUSES",
    "NORMALIZERS",
    "ORDER_ASSIGNED",
    "ORDER_CREATED",
    "SYNC_TOPICS",
    "DispatchError",
    "Dispatcher",
    "NormalizeError",
    "ShopChange",
    "mount_dispatch",
    "normalize",
    "order_key",
]


def mount_dispatch(app: FastAPI, dispatcher: Dispatcher, delivery: DeliveryParts) -> None:
    """The drivers' routes (HTTP and WebSocket); the dispatcher's writes wake the hub and
    the relay at once instead of at their next poll."""
    from portwright.apps.dispatch._routes import drivers_router
    from portwright.delivery._streams import authenticate_ws

    dispatcher.wake = delivery.wake
    app.include_router(drivers_router(dispatcher, delivery.hub, authenticate_ws(dispatcher.store)))
    app.state.dispatcher = dispatcher
