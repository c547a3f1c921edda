"""Normalization: each platform's payload shape becomes the same ShopChange."""

from __future__ import annotations

import json

import pytest

from portwright.apps.dispatch import NormalizeError, normalize
from portwright.sandbox.shops import ALPHA, BETA, Order


def _order(order_id: str) -> Order:
    return Order(order_id, 1001, "Ada Byron", "12 Quay St", [("PZ", "Pizza", 2, 1150)],
                 "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")  # fmt: skip


@pytest.mark.parametrize("kind", ["created", "updated", "cancelled", "fulfilled"])
def test_both_platforms_normalize_to_the_same_change(kind: str) -> None:
    """shop-alpha (topic header + bare order) and shop-beta (typed envelope) give one shape."""
    alpha = ALPHA.event(7, 1, kind, _order("5100000001"))  # type: ignore[arg-type]
    topic = ALPHA.headers("s", alpha, {})["x-shop-topic"]
    beta = BETA.event(7, 1, kind, _order("ord_abc"))  # type: ignore[arg-type]
    a = normalize("shop-alpha", topic, alpha.body)
    b = normalize("shop-beta", json.loads(beta.body)["type"], beta.body)
    assert (a.kind, a.order_id) == (kind, "5100000001")
    assert (b.kind, b.order_id) == (kind, "ord_abc")
    for change in (a, b):
        assert change.summary["customer"] == "Ada Byron"
        assert change.summary["address"] == "12 Quay St"
        assert change.summary["total_cents"] == 2300


def test_a_payload_without_an_order_names_the_field() -> None:
    """A body that names no order, or an unknown event kind, is refused with the field."""
    with pytest.raises(NormalizeError) as missing:
        normalize("shop-beta", "order.created", b'{"type": "order.created", "data": {}}')
    assert missing.value.field == "body.data.id"
    with pytest.raises(NormalizeError) as unknown:
        normalize("shop-alpha", "orders/teleported", b'{"id": 1}')
    assert unknown.value.field == "x-shop-topic"
    with pytest.raises(NormalizeError) as garbage:
        normalize("shop-alpha", "orders/create", b"not json")
    assert garbage.value.field == "body"


def test_a_shopify_topic_must_agree_with_the_signed_body_and_the_order() -> None:
    """An inbox row whose event type disagrees with the body's signed webhook.topic, or a
    cancellation of an order whose body says it is open, is refused (defence in depth
    behind the receiver's check)."""
    created = ALPHA.event(7, 1, "created", _order("5100000001"))
    with pytest.raises(NormalizeError) as swapped:
        normalize("shop-alpha", "orders/cancelled", created.body)
    assert swapped.value.field == "event_type"
    bare = json.loads(created.body)
    del bare["webhook"]  # as rows persisted before topics were signed
    with pytest.raises(NormalizeError) as open_order:
        normalize("shop-alpha", "orders/cancelled", json.dumps(bare).encode())
    assert open_order.value.field == "body.cancelled_at"
    assert normalize("shop-alpha", "orders/create", json.dumps(bare).encode()).kind == "created"


def test_a_body_too_deep_to_parse_is_a_normalize_error() -> None:
    """A deeply nested body fails as a NormalizeError naming the body, never a RecursionError."""
    with pytest.raises(NormalizeError) as deep:
        normalize("shop-alpha", "orders/create", b"[" * 100_000 + b"]" * 100_000)
    assert deep.value.field == "body"
