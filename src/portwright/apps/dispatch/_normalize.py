"""Shop webhooks → one platform-neutral `ShopChange`, whatever the platform's payload shape.

- Shopify-style (shop-alpha): the order itself as the body, the topic (`orders/create`,
  `orders/updated`, `orders/cancelled`, `orders/fulfilled`) in its signed `webhook.topic`
  (the verified event type; a row whose type disagrees with the body is refused), and an
  order's own state must back a cancellation or fulfilment (`cancelled_at`,
  `fulfillment_status`), so no topic can cancel an order whose body says it is open.
- Standard Webhooks envelope (shop-beta): `{"type": "order.created", "data": {order}}`.

A payload that names no order, or an event kind nobody dispatches on, raises
`NormalizeError` naming the field and the problem (the handler gives up on it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["NORMALIZERS", "ChangeKind", "NormalizeError", "ShopChange", "normalize"]

ChangeKind = Literal["created", "updated", "cancelled", "fulfilled"]
_KINDS: dict[str, ChangeKind] = {
    "create": "created",
    "created": "created",
    "update": "updated",
    "updated": "updated",
    "cancel": "cancelled",
    "cancelled": "cancelled",
    "fulfill": "fulfilled",
    "fulfilled": "fulfilled",
}


class NormalizeError(ValueError):
    """The webhook cannot become a dispatch change; `field` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ShopChange:
    """What happened to one order on one platform."""

    kind: ChangeKind
    order_id: str
    summary: Mapping[str, Any] = field(default_factory=dict)


def _kind(field_name: str, raw: str) -> ChangeKind:
    kind = _KINDS.get(raw.rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower())
    if kind is None:
        raise NormalizeError(field_name, f"unknown order event {raw!r}")
    return kind


def _object(value: Any, field_name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NormalizeError(field_name, "expected a JSON object")
    return value


def _order_id(value: Any, field_name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise NormalizeError(field_name, "missing order id")
    return str(value)


def _shopify_kind(event_type: str, order: Mapping[str, Any]) -> ChangeKind:
    """The topic the body signed (the event type must agree), backed by the order's state."""
    meta = order.get("webhook")
    signed = meta.get("topic") if isinstance(meta, dict) else None
    if isinstance(signed, str) and signed:
        if event_type and event_type != signed:
            raise NormalizeError(
                "event_type", f"{event_type!r} disagrees with the body's webhook.topic {signed!r}"
            )
        kind = _kind("body.webhook.topic", signed)
    else:  # an inbox row from before topics were signed
        kind = _kind("x-shop-topic", event_type)
    if kind == "cancelled" and not order.get("cancelled_at"):
        raise NormalizeError("body.cancelled_at", "missing: the order says it is not cancelled")
    if kind == "fulfilled" and order.get("fulfillment_status") != "fulfilled":
        raise NormalizeError("body.fulfillment_status", "the order says it is not fulfilled")
    return kind


def shopify_style(event_type: str, payload: Any) -> ShopChange:
    """shop-alpha: the body is the order; its signed `webhook.topic` says what happened."""
    order = _object(payload, "body")
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    address = order.get("shipping_address")
    address = address if isinstance(address, dict) else {}
    total = order.get("total_price")
    try:
        total_cents = round(float(total) * 100) if total is not None else None
    except (TypeError, ValueError):
        total_cents = None
    summary = {
        "number": order.get("order_number"),
        "customer": (customer or {}).get("name"),
        "address": address.get("address1"),
        "total_cents": total_cents,
        "currency": order.get("currency"),
    }
    return ShopChange(
        _shopify_kind(event_type, order), _order_id(order.get("id"), "body.id"), summary
    )


def envelope_style(event_type: str, payload: Any) -> ShopChange:
    """shop-beta: `{"type": "order.<kind>", "data": {order}}`."""
    body = _object(payload, "body")
    order = _object(body.get("data"), "body.data")
    summary = {
        "number": order.get("number"),
        "customer": order.get("customer"),
        "address": order.get("address"),
        "total_cents": order.get("total_cents"),
        "currency": order.get("currency"),
    }
    kind = _kind("body.type", str(body.get("type") or event_type))
    return ShopChange(kind, _order_id(order.get("id"), "body.data.id"), summary)


Normalizer = Callable[[str, Any], ShopChange]
NORMALIZERS: Mapping[str, Normalizer] = {"shop-alpha": shopify_style, "shop-beta": envelope_style}


def normalize(source: str, event_type: str, body: bytes) -> ShopChange:
    """The change a webhook from `source` describes (its shape guessed for unknown sources)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NormalizeError("body", f"not valid JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:  # too deep or too long a number
        raise NormalizeError("body", f"not parseable within limits ({exc})") from None
    normalizer = NORMALIZERS.get(source)
    if normalizer is None:
        is_envelope = isinstance(payload, dict) and isinstance(payload.get("data"), dict)
        normalizer = envelope_style if is_envelope else shopify_style
    return normalizer(event_type, payload)
