"""Two simulated shop platforms that send signed order webhooks and take status updates.

- ``shop-alpha`` signs Shopify-style (``X-Shop-Hmac-Sha256`` over the raw body);
- ``shop-beta`` signs with Standard Webhooks (``webhook-id/-timestamp/-signature``).

Each emits order created / updated / cancelled / fulfilled events to
``options["target_url"]`` at ``rate_per_s`` while ``enabled`` (start with
``POST /_emit/start``, stop with ``POST /_emit/stop``, send a burst with
``POST /_emit/burst {"count": n, "wait": bool}``, read ``GET /_emit/status``),
re-sends some deliberately (``duplicate_rate``), retries failed deliveries, and
records every send in the ledger (kind "webhook_sent", key = event id). The
order API (``GET /api/orders/{id}``, ``POST /api/orders/{id}/status``) is
idempotent on ``Idempotency-Key`` (ledger kind "status_update").
"""

from __future__ import annotations

from portwright.sandbox._chaos import ChaosKnobs
from portwright.sandbox._world import ServiceSpec
from portwright.sandbox.shops._api import StatusUpdate
from portwright.sandbox.shops._app import build_shop
from portwright.sandbox.shops._emitter import DEFAULT_OPTIONS, Emitter
from portwright.sandbox.shops._orders import DELIVERY_STATUSES, Order, OrderBook, OrderEvent
from portwright.sandbox.shops._platforms import ALPHA, BETA, AlphaPlatform, BetaPlatform, Platform

__all__ = [
    "ALPHA",
    "BETA",
    "DEFAULT_OPTIONS",
    "DELIVERY_STATUSES",
    "AlphaPlatform",
    "BetaPlatform",
    "Emitter",
    "Order",
    "OrderBook",
    "OrderEvent",
    "Platform",
    "StatusUpdate",
    "build_shop",
    "specs",
]


def specs() -> list[ServiceSpec]:
    """shop-alpha and shop-beta; the emitter control endpoints are never faulted by chaos."""
    return [
        ServiceSpec(
            platform.name,
            build_shop(platform),
            knobs=ChaosKnobs(exempt_paths=["/_emit/"]),
            options=DEFAULT_OPTIONS | {"secret": platform.new_secret()},
        )
        for platform in (ALPHA, BETA)
    ]
