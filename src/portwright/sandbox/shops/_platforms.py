"""The two shop platforms: their ids, payload shapes and webhook signatures.

- shop-alpha, Shopify-style: ``X-Shop-Hmac-Sha256 = base64(HMAC-SHA256(secret, raw body))``.
  The signature covers the body alone, so the body carries the event's identity beside the
  order: ``"webhook": {"id", "topic", "shop_domain", "triggered_at"}``; the ``X-Shop-Topic``,
  ``X-Shop-Webhook-Id``, ``X-Shop-Domain`` and ``X-Shop-Triggered-At`` headers repeat it.
- shop-beta, Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>`` where
  the key is the base64 part of a ``whsec_…`` secret.

Secrets are never built in: each world's shop draws a fresh one (`new_secret`) unless its
`secret` option is set, so whoever trusts it must be configured with that world's secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from standardwebhooks import Webhook

from portwright.sandbox.shops._orders import EventKind, Order, OrderEvent, now_iso

__all__ = ["ALPHA", "BETA", "AlphaPlatform", "BetaPlatform", "Platform", "order_view"]


def _digest(seed: int, text: str, size: int = 16) -> bytes:
    return hashlib.blake2b(f"{seed}|{text}".encode(), digest_size=size).digest()


def order_view(order: Order) -> dict[str, Any]:
    """The platform-neutral fields every order representation carries."""
    return {
        "id": order.id,
        "number": order.number,
        "state": order.state,
        "customer": order.customer,
        "address": order.address,
        "items": [
            {"sku": sku, "title": title, "quantity": qty, "unit_price_cents": price}
            for sku, title, qty, price in order.items
        ],
        "total_cents": order.total_cents,
        "note": order.note,
        "delivery_status": order.delivery_status,
        "driver_id": order.driver_id,
        "version": order.version,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


class Platform(Protocol):
    """How one platform names things, shapes payloads and signs webhooks."""

    @property
    def name(self) -> str: ...

    def new_secret(self) -> str:
        """A fresh random signing secret in this platform's format."""
        ...

    def order_id(self, seed: int, number: int) -> str: ...

    def event(self, seed: int, seq: int, kind: EventKind, order: Order) -> OrderEvent: ...

    def headers(self, secret: str, event: OrderEvent, options: dict[str, Any]) -> dict[str, str]:
        """Signed headers for one send of `event` (called again for every re-send)."""
        ...


@dataclass(frozen=True)
class AlphaPlatform:
    """Shopify-style: numeric order ids, topic header, HMAC of the raw body."""

    name: str = "shop-alpha"
    domain: str = "alpha.sandbox.shop"

    def new_secret(self) -> str:
        return "shpss_" + secrets.token_hex(24)

    def order_id(self, seed: int, number: int) -> str:
        return str(5_100_000_000 + int.from_bytes(_digest(seed, "alpha-base", 3)) + number)

    def event(self, seed: int, seq: int, kind: EventKind, order: Order) -> OrderEvent:
        payload = {
            "id": int(order.id),
            "name": f"#{order.number}",
            "order_number": order.number,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
            "cancelled_at": order.updated_at if kind == "cancelled" else None,
            "financial_status": "refunded" if kind == "cancelled" else "paid",
            "fulfillment_status": "fulfilled" if "fulfilled" in (kind, order.state) else None,
            "total_price": f"{order.total_cents / 100:.2f}",
            "currency": "USD",
            "note": order.note,
            "customer": {"name": order.customer},
            "shipping_address": {"address1": order.address, "city": "Sandbox City"},
            "line_items": [
                {"sku": sku, "title": title, "quantity": qty, "price": f"{price / 100:.2f}"}
                for sku, title, qty, price in order.items
            ],
        }
        event_id = str(uuid.UUID(bytes=_digest(seed, f"alpha-event|{seq}")))
        payload["webhook"] = {  # signed with the order: what the receiver may trust
            "id": event_id,
            "topic": "orders/" + {"created": "create"}.get(kind, kind),
            "shop_domain": self.domain,
            "triggered_at": now_iso(),
        }
        return OrderEvent(event_id, seq, kind, order.id, json.dumps(payload).encode())

    def headers(self, secret: str, event: OrderEvent, options: dict[str, Any]) -> dict[str, str]:
        mac = hmac.new(secret.encode(), event.body, hashlib.sha256).digest()
        meta = json.loads(event.body)["webhook"]
        return {
            "content-type": "application/json",
            "x-shop-topic": meta["topic"],
            "x-shop-hmac-sha256": base64.b64encode(mac).decode(),
            "x-shop-webhook-id": meta["id"],
            "x-shop-domain": meta["shop_domain"],
            "x-shop-triggered-at": meta["triggered_at"],
        }


@dataclass(frozen=True)
class BetaPlatform:
    """Standard Webhooks: `ord_` ids, {type, timestamp, data} envelopes, `whsec_` secrets."""

    name: str = "shop-beta"

    def new_secret(self) -> str:
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

    def order_id(self, seed: int, number: int) -> str:
        return "ord_" + _digest(seed, f"beta-order|{number}", 8).hex()

    def event(self, seed: int, seq: int, kind: EventKind, order: Order) -> OrderEvent:
        payload = {
            "type": f"order.{kind}",
            "timestamp": order.updated_at,
            "data": order_view(order) | {"currency": "EUR"},
        }
        event_id = "msg_" + _digest(seed, f"beta-event|{seq}", 12).hex()
        return OrderEvent(event_id, seq, kind, order.id, json.dumps(payload).encode())

    def headers(self, secret: str, event: OrderEvent, options: dict[str, Any]) -> dict[str, str]:
        stamp = int(time.time())
        signature = Webhook(secret).sign(
            event.id, datetime.fromtimestamp(stamp, tz=UTC), event.body
        )
        return {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature,
        }


ALPHA = AlphaPlatform()
BETA = BetaPlatform()
