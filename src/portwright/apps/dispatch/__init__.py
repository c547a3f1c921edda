"""Dispatch (scenario 5): shop webhooks → normalized domain events → orders assigned to
drivers → pushed to drivers over WebSocket → synced back to each platform.

Domain events (outbox topics): `order.created` (OrderCreated), `order.assigned`
(OrderAssigned), `driver.location_updated` (DriverLocationUpdated),
`assignment.changed` (AssignmentChanged), `delivery.completed` (DeliveryCompleted).
A platform's status sync is a `shop-status` webhook endpoint of the tenant
(`POST /v1/webhook-endpoints {"kind": "shop-status", "platform": …, "url": …,
"topics": SYNC_TOPICS}`): the relay's per-endpoint breaker, retries, dead letters
and replay apply to it.

It plugs into the core through entry points (pyproject.toml): the `shop-order` webhook
handler (`portwright.webhook_handlers`) and the drivers' routes (`portwright.routers`,
`mount_routes(app, store, delivery)`, called by the gateway's `create_app`); both use
the store's one `dispatcher_for(store)`.
"""

from __future__ import annotations

import weakref
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
from portwright.apps.dispatch._store import (
    ACTIVE,
    AssignmentRecord,
    DispatchRepository,
    DriverRecord,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from portwright.delivery import DeliveryParts
    from portwright.store import Store

__all__ = [
    "ACTIVE",
    "ASSIGNMENT_CHANGED",
    "DELIVERY_COMPLETED",
    "DRIVER_LOCATION_UPDATED",
    "DRIVER_STATUSES",
    "NORMALIZERS",
    "ORDER_ASSIGNED",
    "ORDER_CREATED",
    "SYNC_TOPICS",
    "AssignmentRecord",
    "DispatchError",
    "DispatchRepository",
    "Dispatcher",
    "DriverRecord",
    "NormalizeError",
    "ShopChange",
    "dispatcher_for",
    "mount_dispatch",
    "mount_routes",
    "normalize",
    "order_key",
]


def mount_dispatch(app: FastAPI, dispatcher: Dispatcher, delivery: DeliveryParts) -> None:
    """The drivers' routes (HTTP and WebSocket); the dispatcher's writes wake the hub and
    the relay at once instead of at their next poll."""
    from portwright.apps.dispatch._routes import driver_tokens, drivers_router
    from portwright.delivery import authenticate_ws
    from portwright.webauth import app_key

    dispatcher.wake = delivery.wake
    tokens = driver_tokens(app_key(app, "driver-tokens"))
    app.include_router(
        drivers_router(dispatcher, delivery.hub, authenticate_ws(dispatcher.store), tokens)
    )
    app.state.dispatcher = dispatcher


_DISPATCHERS: weakref.WeakKeyDictionary[Store, Dispatcher] = weakref.WeakKeyDictionary()


def dispatcher_for(store: Store) -> Dispatcher:
    """The one dispatcher of `store` (shared by the webhook handler and the routes)."""
    dispatcher = _DISPATCHERS.get(store)
    if dispatcher is None:
        dispatcher = _DISPATCHERS[store] = Dispatcher(store)
    return dispatcher


def mount_routes(app: FastAPI, store: Store, delivery: DeliveryParts) -> None:
    """The `portwright.routers` entry: the drivers' routes on the store's dispatcher."""
    mount_dispatch(app, dispatcher_for(store), delivery)
