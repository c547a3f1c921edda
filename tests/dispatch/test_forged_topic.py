"""A Shopify-style signature covers the body only: a captured body resent under another
topic (or without a fresh signed time) is refused, and the order it names is untouched."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx

from portwright.apps.dispatch import DispatchRepository, order_key
from portwright.sandbox.shops import ALPHA, Order, OrderEvent
from portwright.sandbox.shops._orders import now_iso
from tests.dispatch.conftest import TIMEOUT, Dispatch


def _captured(d: Dispatch, order_id: str) -> tuple[OrderEvent, dict[str, str]]:
    """A real shop-alpha orders/create delivery, signed with the world's secret, as an
    eavesdropper (a log, a proxy) would have it."""
    stamp = now_iso()
    order = Order(order_id, 4242, "Ada Byron", "1 Quay St", [("PZ-MARG", "Pizza", 1, 1150)],
                  stamp, stamp)  # fmt: skip
    event = ALPHA.event(d.world.seed, 900_000 + int(order_id[-3:]), "created", order)
    secret = str(d.world.context("shop-alpha").options["secret"])
    return event, ALPHA.headers(secret, event, {})


def _post(d: Dispatch, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{d.url}/v1/hooks/shop-alpha", content=body, headers=headers,
                      timeout=TIMEOUT)  # fmt: skip


def test_topic_swap_on_a_captured_body_is_refused_and_the_order_is_not_cancelled(
    dispatch: Dispatch,
) -> None:
    """The captured orders/create body, resent as orders/cancelled (with a fresh webhook id,
    so no dedupe hides it), is a 401 naming x-shop-topic; nothing is persisted and the order
    dispatch holds stays open."""
    d = dispatch
    event, headers = _captured(d, "5100000777")
    assert _post(d, event.body, headers).status_code == 202
    tenant_id = d.tenant_ids["acme"]
    key = order_key(tenant_id, "shop-alpha", "5100000777")
    d.wait(
        "the order reaches dispatch",
        lambda: DispatchRepository(d.store.engine).get(key) is not None,
    )
    d.wait("the inbox settles", d.inbox_settled)
    before = DispatchRepository(d.store.engine).get(key)
    assert before is not None
    assert before.status != "cancelled"

    forged = headers | {"x-shop-topic": "orders/cancelled", "x-shop-webhook-id": "forged-1"}
    refused = _post(d, event.body, forged)
    assert refused.status_code == 401, refused.text
    problem = refused.json()
    assert problem["fields"][0]["field"] in {"x-shop-topic", "x-shop-webhook-id"}
    only_topic = headers | {"x-shop-topic": "orders/cancelled"}
    refused = _post(d, event.body, only_topic)
    assert refused.status_code == 401
    assert refused.json()["fields"][0]["field"] == "x-shop-topic"

    rows = [r for r in d.store.inbox.search(source="shop-alpha", limit=10_000)
            if json.loads(r.payload)["id"] == 5100000777]  # fmt: skip
    assert [r.event_type for r in rows] == ["orders/create"]
    after = DispatchRepository(d.store.engine).get(key)
    assert after is not None
    assert after.status == before.status
    assert after.version == before.version


def test_body_without_signed_time_is_refused_where_the_source_requires_one(
    dispatch: Dispatch,
) -> None:
    """shop-alpha requires a timestamp: a validly signed body whose webhook object has no
    triggered_at is a 401 naming it (a header time is not signed, so it does not count)."""
    d = dispatch
    event, headers = _captured(d, "5100000778")
    payload = json.loads(event.body)
    del payload["webhook"]["triggered_at"]
    body = json.dumps(payload).encode()
    secret = str(d.world.context("shop-alpha").options["secret"])
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    resigned = {k: v for k, v in headers.items() if k != "x-shop-hmac-sha256"}
    resigned["x-shop-hmac-sha256"] = base64.b64encode(mac).decode()
    refused = _post(d, body, resigned)  # the header x-shop-triggered-at is still there
    assert refused.status_code == 401, refused.text
    assert refused.json()["fields"][0]["field"] == "body.webhook.triggered_at"
    stale = json.loads(event.body)
    stale["webhook"]["triggered_at"] = "2020-01-01T00:00:00Z"
    body = json.dumps(stale).encode()
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    resigned["x-shop-hmac-sha256"] = base64.b64encode(mac).decode()
    resigned["x-shop-triggered-at"] = "2020-01-01T00:00:00Z"
    refused = _post(d, body, resigned)
    assert refused.status_code == 401
    assert "replay refused" in refused.text
    assert not [r for r in d.store.inbox.search(source="shop-alpha", limit=10_000)
                if json.loads(r.payload)["id"] == 5100000778]  # fmt: skip
