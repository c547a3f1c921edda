"""Mounting delivery and observability into the gateway app: one call from `create_app`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
import structlog
from fastapi import FastAPI

from portwright.delivery._hub import Hub
from portwright.delivery._notify import OutboxListener
from portwright.delivery._policy import DeliveryPolicy
from portwright.delivery._relay import Relay, Sink
from portwright.delivery._routes import delivery_router
from portwright.delivery._signing import SecretSealer, seal_stored_secrets
from portwright.delivery._streams import authenticate_ws, streams_router
from portwright.observability import Metrics, MetricsMiddleware, health_router
from portwright.store import Store

__all__ = ["PUBLIC_PATHS", "DeliveryParts", "mount_delivery"]

PUBLIC_PATHS = ("/metrics", "/healthz", "/readyz", "/status")
log = structlog.get_logger("portwright.delivery")


@dataclass
class DeliveryParts:
    """What the app's lifespan starts and stops. The listener (PostgreSQL LISTEN/NOTIFY;
    a no-op on SQLite) wakes hub and relay when any process writes to the outbox."""

    hub: Hub
    relay: Relay
    metrics: Metrics
    listener: OutboxListener | None = None
    store: Store | None = None
    sealer: SecretSealer | None = None

    def wake(self) -> None:
        self.hub.wake()
        self.relay.wake()

    async def start(self) -> None:
        """Seal endpoint secrets still stored in clear (rows from before sealing), then
        start the hub, the relay and the listener."""
        if self.store is not None and self.sealer is not None:
            sealed = await asyncio.to_thread(seal_stored_secrets, self.store, self.sealer)
            if sealed:
                log.info("sealed endpoint secrets stored in clear", endpoints=sealed)
        self.hub.start()
        self.relay.start()
        if self.listener is not None:
            self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
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
    sealer: SecretSealer,
) -> DeliveryParts:
    """Routes (/metrics, /healthz, /readyz, /status, streams, endpoints, deliveries, dead
    letters) and the HTTP timing middleware; returns the parts the lifespan runs. Endpoint
    signing secrets are sealed and opened with `sealer` (the gateway's vault)."""
    metrics = Metrics(store, live_after_s=live_after_s)
    listener = OutboxListener(store, application_name="portwright-gateway")
    hub = Hub(store, listener=listener)
    relay = Relay(
        store, client=client, policy=policy, sinks=sinks, observer=metrics,
        on_published=hub.wake, sealer=sealer,
    )  # fmt: skip
    listener.add(relay.wake)
    parts = DeliveryParts(hub, relay, metrics, listener, store, sealer)
    app.include_router(health_router(store, metrics, live_after_s=live_after_s))
    app.include_router(delivery_router(store, check_url, parts.wake, sealer))
    app.include_router(streams_router(store, hub, authenticate_ws(store)))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.delivery = parts
    return parts
