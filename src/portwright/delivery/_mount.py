"""Mounting delivery and observability into the gateway app: one call from `create_app`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from portwright.delivery._hub import Hub
from portwright.delivery._policy import DeliveryPolicy
from portwright.delivery._relay import Relay, Sink
from portwright.delivery._routes import delivery_router
from portwright.delivery._streams import authenticate_ws, streams_router
from portwright.observability import Metrics, MetricsMiddleware, health_router
from portwright.store import Store

__all__ = ["PUBLIC_PATHS", "DeliveryParts", "mount_delivery"]

PUBLIC_PATHS = ("/metrics", "/healthz", "/readyz", "/status")


@dataclass
class DeliveryParts:
    """What the app's lifespan starts and stops."""

    hub: Hub
    relay: Relay
    metrics: Metrics

    def wake(self) -> None:
        self.hub.wake()
        self.relay.wake()

    async def start(self) -> None:
        self.hub.start()
        self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
        await self.hub.stop()


def mount_delivery(
    app: FastAPI,
    store: Store,
    *,
    check_url: Callable[[str, str], Awaitable[None]],
    client: httpx.AsyncClient | None = None,
    policy: DeliveryPolicy | None = None,
    sinks: Sequence[Sink] = (),
    live_after_s: float = 15.0,
) -> DeliveryParts:
    """Routes (/metrics, /healthz, /readyz, /status, streams, endpoints, deliveries, dead
    letters) and the HTTP timing middleware; returns the parts the lifespan runs."""
    metrics = Metrics(store, live_after_s=live_after_s)
    hub = Hub(store)
    relay = Relay(
        store, client=client, policy=policy, sinks=sinks, observer=metrics, on_published=hub.wake
    )
    parts = DeliveryParts(hub, relay, metrics)
    app.include_router(health_router(store, metrics, live_after_s=live_after_s))
    app.include_router(delivery_router(store, check_url, parts.wake))
    app.include_router(streams_router(store, hub, authenticate_ws(store)))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.delivery = parts
    return parts
