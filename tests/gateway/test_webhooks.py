"""Inbound webhooks: three signature schemes, rotation, skew, dedupe, and processing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime

import httpx
import standardwebhooks
import stripe
from prometheus_client.parser import text_string_to_metric_families

from portwright.client import Client
from portwright.sandbox import Ledger
from portwright.sandbox.consulate._webhook import deliver, payment_event
from portwright.testing import wait_until
from tests.gateway._support import (
    SHOPIFY_SECRET,
    STANDARD_SECRET,
    STRIPE_SECRET,
    STRIPE_SECRET_NEXT,
    Stack,
)


def _hook(stack: Stack, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    headers = {"content-type": "application/json", **headers}
    return httpx.post(f"{stack.base_url}/v1/hooks/{source}", content=body, headers=headers)


def _standard(
    body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{secrets.token_hex(8)}"
    when = at or datetime.now(tz=UTC)
    signature = standardwebhooks.Webhook(STANDARD_SECRET).sign(msg_id, when, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def _stripe(body: bytes, secret: str = STRIPE_SECRET, at: int | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, at)
    return {"stripe-signature": header}


def _stripe_body(event_type: str = "customer.created", **extra: object) -> bytes:
    return json.dumps({"id": f"evt_{secrets.token_hex(8)}", "type": event_type, **extra}).encode()


def _row(stack: Stack, inbox_id: str) -> object:
    return stack.store.inbox.get(inbox_id)


def test_standard_webhooks_library_signature_is_accepted(stack: Stack) -> None:
    """A delivery signed by the standardwebhooks library is acknowledged 202 and persisted."""
    body = json.dumps({"type": "order.created", "data": {"id": "ord_1"}}).encode()
    response = _hook(stack, "shop-beta", body, _standard(body))
    assert response.status_code == 202
    assert response.json()["duplicate"] is False
    row = stack.store.inbox.get(response.json()["id"])
    assert row.payload == body
    assert row.event_type == "order.created"


async def test_stripe_library_signature_is_accepted_and_processed(stack: Stack) -> None:
    """A delivery signed by Stripe's signature helper is acknowledged and processed."""
    body = _stripe_body()
    response = _hook(stack, "consulate", body, _stripe(body))
    assert response.status_code == 202
    inbox_id = response.json()["id"]
    await wait_until(lambda: stack.store.inbox.get(inbox_id).status == "done", timeout=10)
    assert "ignored" in (stack.store.inbox.get(inbox_id).result or "")


def _shopify(
    body: dict[str, object], *, secret: str = SHOPIFY_SECRET, **meta: object
) -> tuple[bytes, dict[str, str]]:
    """A Shopify-style delivery: the order plus its signed `webhook` object, HMAC of the
    raw body, headers repeating the body's identity."""
    webhook = {
        "id": secrets.token_hex(8),
        "topic": "orders/create",
        "shop_domain": "alpha.sandbox.shop",
        "triggered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **meta,
    }
    raw = json.dumps({**body, "webhook": {k: v for k, v in webhook.items() if v is not None}})
    mac = base64.b64encode(hmac.new(secret.encode(), raw.encode(), hashlib.sha256).digest())
    headers = {"x-shop-hmac-sha256": mac.decode(), "x-shop-webhook-id": str(webhook["id"]),
               "x-shop-topic": str(webhook["topic"])}  # fmt: skip
    return raw.encode(), headers


def test_shopify_style_signature_is_accepted(stack: Stack) -> None:
    """A Shopify-style base64 HMAC of the raw body is accepted; id, topic and shop domain
    come from the signed body (the headers repeat them)."""
    body, headers = _shopify({"id": 51, "name": "#1001"})
    response = _hook(stack, "shop-alpha", body, headers | {"x-shop-domain": "alpha.sandbox.shop"})
    assert response.status_code == 202, response.text
    row = stack.store.inbox.get(response.json()["id"])
    assert row.external_id == "alpha.sandbox.shop"
    assert row.event_type == "orders/create"
    assert row.event_id == headers["x-shop-webhook-id"]


def test_shopify_headers_that_disagree_with_the_signed_body_are_refused(stack: Stack) -> None:
    """The signature covers the body only: a captured body resent with another topic, id or
    domain header is a 401 naming that header, and nothing is persisted; a body that does
    not carry its id and topic is a 400."""
    body, headers = _shopify({"id": 52}, topic="orders/create")
    before = len(stack.store.inbox.search(source="shop-alpha", limit=10_000))
    for name, forged in (("x-shop-topic", "orders/cancelled"),
                         ("x-shop-webhook-id", "another-id"),
                         ("x-shop-domain", "other.sandbox.shop")):  # fmt: skip
        refused = _hook(stack, "shop-alpha", body, headers | {name: forged})
        assert refused.status_code == 401, refused.text
        assert refused.json()["fields"][0]["field"] == name
    assert len(stack.store.inbox.search(source="shop-alpha", limit=10_000)) == before
    bare = b'{"id": 53}'
    mac = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), bare, hashlib.sha256).digest())
    refused = _hook(stack, "shop-alpha", bare, headers | {"x-shop-hmac-sha256": mac.decode()})
    assert refused.status_code == 400
    assert refused.json()["fields"][0]["field"] == "body.webhook"
    assert _hook(stack, "shop-alpha", body, headers).status_code == 202  # the honest one


def test_shopify_timestamp_required_per_source(stack: Stack) -> None:
    """A source with require_timestamp refuses a body without a signed triggered_at (an
    unsigned header time does not count) or with one out of the window; a source without
    it accepts the same body; a signed time out of window is refused by both."""
    body, headers = _shopify({"id": 54}, triggered_at=None)
    headers["x-shop-triggered-at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    refused = _hook(stack, "shop-strict", body, headers)
    assert refused.status_code == 401, refused.text
    assert refused.json()["fields"][0]["field"] == "body.webhook.triggered_at"
    assert "requires a signed timestamp" in refused.json()["message"]
    assert _hook(stack, "shop-alpha", body, headers).status_code == 202
    stale, headers = _shopify({"id": 55}, triggered_at="2020-01-01T00:00:00Z")
    for source in ("shop-strict", "shop-alpha"):
        refused = _hook(stack, source, stale, headers)
        assert refused.status_code == 401
        assert "replay refused" in refused.json()["message"]
    fresh, headers = _shopify({"id": 56})
    assert _hook(stack, "shop-strict", fresh, headers).status_code == 202


def test_second_secret_is_accepted_during_rotation(stack: Stack) -> None:
    """Either of a source's two active secrets verifies."""
    body = _stripe_body()
    assert _hook(stack, "consulate", body, _stripe(body, STRIPE_SECRET_NEXT)).status_code == 202


def test_tampered_expired_and_wrong_secret_are_refused(stack: Stack) -> None:
    """A changed body, a timestamp outside ±5 min, a wrong secret: 401; no header: 400."""
    body = _stripe_body()
    tampered = body.replace(b"customer", b"kustomer")
    assert _hook(stack, "consulate", tampered, _stripe(body)).status_code == 401
    old = _hook(stack, "consulate", body, _stripe(body, at=int(time.time()) - 301))
    assert old.status_code == 401
    assert "outside" in old.json()["message"]
    future = _hook(stack, "consulate", body, _stripe(body, at=int(time.time()) + 400))
    assert future.status_code == 401
    assert _hook(stack, "consulate", body, _stripe(body, "whsec_wrong")).status_code == 401
    missing = _hook(stack, "consulate", body, {})
    assert missing.status_code == 400
    assert missing.json()["fields"][0]["field"] == "stripe-signature"
    sw = json.dumps({"type": "x"}).encode()
    stale = _standard(sw, at=datetime.fromtimestamp(time.time() - 600, tz=UTC))
    assert _hook(stack, "shop-beta", sw, stale).status_code == 401
    assert _hook(stack, "shop-beta", sw + b" ", _standard(sw)).status_code == 401


def test_unknown_source_is_404_listing_known(stack: Stack) -> None:
    """A source that is not configured is 404 and the answer lists the configured ones."""
    response = _hook(stack, "nowhere", b"{}", {})
    assert response.status_code == 404
    assert response.json()["known"] == ["consulate", "shop-alpha", "shop-beta", "shop-strict"]


def test_oversized_webhook_is_413(stack: Stack) -> None:
    """A webhook body over the limit is refused before verification."""
    body = b"{" + b" " * 70_000 + b"}"
    assert _hook(stack, "consulate", body, _stripe(body)).status_code == 413


def test_hook_requests_are_timed_under_their_route_and_other_methods_are_405(
    stack: Stack,
) -> None:
    """The hook path (served by a plain route in front of the documented one) is timed under
    its template with each answer's status; a GET is a JSON 405, like any other route's."""
    body = _stripe_body()
    assert _hook(stack, "consulate", body, _stripe(body)).status_code == 202
    assert _hook(stack, "consulate", body, _stripe(body, "whsec_wrong")).status_code == 401
    wrong_method = httpx.get(f"{stack.base_url}/v1/hooks/consulate")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"]
    metrics = httpx.get(f"{stack.base_url}/metrics").text
    timed = {
        (sample.labels["method"], sample.labels["status"])
        for family in text_string_to_metric_families(metrics)
        if family.name == "portwright_http_request_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_count") and sample.labels["route"] == "/v1/hooks/{source}"
    }
    assert {("POST", "202"), ("POST", "401"), ("GET", "405")} <= timed


async def test_duplicate_is_acknowledged_and_processed_once(stack: Stack) -> None:
    """A replayed delivery (same id, same body, fresh signature) is 200 duplicate; one row."""
    body = _stripe_body()
    first = _hook(stack, "consulate", body, _stripe(body))
    again = _hook(stack, "consulate", body, _stripe(body))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    event_id = json.loads(body)["id"]
    rows = [
        r
        for r in stack.store.inbox.search(source="consulate", limit=10_000)
        if r.event_id == event_id
    ]
    assert len(rows) == 1
    changed = json.dumps({**json.loads(body), "type": "other"}).encode()
    conflict = _hook(stack, "consulate", changed, _stripe(changed))
    assert conflict.status_code == 409


async def test_consulate_payment_webhook_moves_the_booking(stack: Stack, client: Client) -> None:
    """The sandbox consulate's signed payment webhook gives the booking its payment input,
    once, even when the consulate delivers the event twice."""
    job = client.submit("booking-stub", {})
    await wait_until(lambda: client.get_job(job.id).waiting_for == "payment", timeout=20)
    event = payment_event(
        f"evt_{secrets.token_hex(8)}",
        succeeded=True,
        payment_id="pay_123",
        amount=8000,
        currency="EUR",
        hold_id="hold_9",
        client_reference=job.id,
    )
    ledger = Ledger()
    url = f"{stack.base_url}/v1/hooks/consulate"
    assert await deliver(url, STRIPE_SECRET, event, ledger=ledger)
    assert await deliver(url, STRIPE_SECRET, event, ledger=ledger)
    await wait_until(lambda: client.get_job(job.id).status == "succeeded", timeout=20)
    payment = client.get_job(job.id).output["payment"]  # type: ignore[index]
    assert payment["status"] == "succeeded"
    assert payment["payment_id"] == "pay_123"
    assert payment["event_id"] == event["id"]
    rows = [
        r
        for r in stack.store.inbox.search(source="consulate", limit=10_000)
        if r.event_id == event["id"]
    ]
    assert [r.status for r in rows] == ["done"]


async def test_payment_for_unknown_booking_fails_visibly(stack: Stack) -> None:
    """A payment naming no job is acknowledged, then marked failed with the reason."""
    event = payment_event(
        f"evt_{secrets.token_hex(8)}",
        succeeded=False,
        payment_id="pay_x",
        amount=1,
        currency="EUR",
        hold_id="h",
        client_reference="job_missing",
    )
    body = json.dumps(event).encode()
    response = _hook(stack, "consulate", body, _stripe(body))
    assert response.status_code == 202
    inbox_id = response.json()["id"]
    await wait_until(lambda: stack.store.inbox.get(inbox_id).status == "failed", timeout=10)
    assert "job_missing" in (stack.store.inbox.get(inbox_id).result or "")


async def test_concurrent_burst_with_copies_is_persisted_once_each(stack: Stack) -> None:
    """Sixty deliveries at once (group commit writes them in a few transactions): twenty
    events each sent twice, and ten ids each sent with two different bodies. Every event has
    one row; of two copies one is 202 and the other 200 naming the same row; of two bodies
    under one id one is 202 and the other 409."""
    run = secrets.token_hex(4)

    def order(n: int, note: str = "") -> bytes:
        return json.dumps({"type": "order.created", "data": {"id": f"o{n}", "note": note}}).encode()

    sends: list[tuple[str, bytes, dict[str, str]]] = []
    for n in range(20):
        body = order(n)
        sends += [(f"copy{n}", body, _standard(body, msg_id=f"msg_{run}_c{n}")) for _ in range(2)]
    for n in range(10):
        for note in ("a", "b"):
            body = order(100 + n, note)
            sends.append((f"clash{n}", body, _standard(body, msg_id=f"msg_{run}_x{n}")))
    limits = httpx.Limits(max_connections=60)
    async with httpx.AsyncClient(base_url=stack.base_url, limits=limits, timeout=30) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/v1/hooks/shop-beta",
                    content=body,
                    headers={"content-type": "application/json", **headers},
                )
                for _, body, headers in sends
            )
        )
    by_event: dict[str, list[httpx.Response]] = {}
    for (event, _, _), response in zip(sends, responses, strict=True):
        by_event.setdefault(event, []).append(response)
    for event, pair in by_event.items():
        codes = sorted(r.status_code for r in pair)
        if event.startswith("copy"):
            assert codes == [200, 202], (event, [r.text for r in pair])
            assert pair[0].json()["id"] == pair[1].json()["id"]
        else:
            assert codes == [202, 409], (event, [r.text for r in pair])
    ours = [
        r
        for r in stack.store.inbox.search(source="shop-beta", limit=100_000)
        if r.event_id.startswith(f"msg_{run}_")
    ]
    assert len(ours) == 30
    assert len({r.event_id for r in ours}) == 30
