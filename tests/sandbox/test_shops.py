"""The shop platforms: signed order webhooks, retries, duplicates, an idempotent status API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from portwright.sandbox import SandboxWorld, ServiceContext, ServiceSpec
from portwright.sandbox.shops import specs


@dataclass
class Inbox:
    """What the tiny receiver saw: verified deliveries and how many it refused."""

    fail_first: bool = False
    verified: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    refused: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # the world's, per shop


def _alpha_ok(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(mac).decode(), headers["x-shop-hmac-sha256"])


def _beta_ok(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def _receiver(inbox: Inbox) -> ServiceSpec:
    def build(_: ServiceContext) -> Starlette:
        async def hook(request: Request) -> PlainTextResponse:
            body = await request.body()
            headers = dict(request.headers)
            shop = request.path_params["shop"]
            ok = _alpha_ok if shop == "alpha" else _beta_ok
            if not ok(inbox.secrets[f"shop-{shop}"], body, headers):
                inbox.refused += 1
                return PlainTextResponse("bad signature", status_code=401)
            event_id = headers.get("x-shop-webhook-id") or headers["webhook-id"]
            inbox.attempts[event_id] = inbox.attempts.get(event_id, 0) + 1
            if inbox.fail_first and inbox.attempts[event_id] == 1:
                return PlainTextResponse("try later", status_code=500)
            inbox.verified.append((event_id, body, headers))
            return PlainTextResponse("ok")

        return Starlette(routes=[Route("/hooks/{shop}", hook, methods=["POST"])])

    return ServiceSpec("receiver", build, chaos_wrapped=False)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def world(inbox: Inbox) -> Iterator[SandboxWorld]:
    with SandboxWorld([*specs(), _receiver(inbox)], seed=9) as running:
        for shop in ("alpha", "beta"):
            options = running.context(f"shop-{shop}").options
            options["target_url"] = f"{running.url('receiver')}/hooks/{shop}"
            options["retry_base_s"] = 0.05
            inbox.secrets[f"shop-{shop}"] = options["secret"]
        yield running
        for shop in ("shop-alpha", "shop-beta"):
            httpx.post(f"{running.url(shop)}/_emit/stop", json={"cancel_pending": True})


def _drain(world: SandboxWorld, shop: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = httpx.get(f"{world.url(shop)}/_emit/status").json()
        if not status["running"] and status["inflight"] == 0:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.02)


def test_alpha_burst_verifies_with_plain_hmac_and_resends_some(
    world: SandboxWorld, inbox: Inbox
) -> None:
    """A shop-alpha burst arrives HMAC-signed; duplicates repeat the same id and the same body."""
    world.context("shop-alpha").options["duplicate_rate"] = 0.5
    world.context("shop-alpha").options["duplicate_delay_s"] = 0.0
    r = httpx.post(f"{world.url('shop-alpha')}/_emit/burst", json={"count": 20, "wait": True})
    assert r.status_code == 200
    assert r.json()["delivered"] == 20
    _drain(world, "shop-alpha")
    assert inbox.refused == 0
    ids = [event_id for event_id, _, _ in inbox.verified]
    assert set(ids) == set(r.json()["event_ids"])
    bodies: dict[str, bytes] = {}
    for event_id, body, headers in inbox.verified:
        assert bodies.setdefault(event_id, body) == body
        assert headers["x-shop-topic"].startswith("orders/")
        assert headers["x-shop-domain"]
    first = inbox.verified[0]
    assert first[2]["x-shop-topic"] == "orders/create"
    assert "id" in json.loads(first[1])
    for event_id, body, headers in inbox.verified:  # the signed body names what happened
        meta = json.loads(body)["webhook"]
        assert meta["id"] == event_id == headers["x-shop-webhook-id"]
        assert meta["topic"] == headers["x-shop-topic"]
        assert meta["shop_domain"] == headers["x-shop-domain"]
        assert meta["triggered_at"] == headers["x-shop-triggered-at"]
    resent = [e for e in world.ledger("shop-alpha").entries("webhook_sent") if e.data["duplicate"]]
    assert resent
    assert len(ids) == 20 + len(resent)
    assert all(e.data["attempt"] == 2 for e in resent)


def test_beta_rate_loop_verifies_with_standard_webhooks(world: SandboxWorld, inbox: Inbox) -> None:
    """shop-beta's rate loop sends max_events events the standardwebhooks library accepts."""
    start = {"rate_per_s": 100, "max_events": 15, "duplicate_rate": 0.0}
    assert httpx.post(f"{world.url('shop-beta')}/_emit/start", json=start).status_code == 200
    status = _drain(world, "shop-beta")
    assert status["emitted"] == 15
    assert inbox.refused == 0
    assert len({event_id for event_id, _, _ in inbox.verified}) == 15
    event_id, body, headers = inbox.verified[0]
    assert json.loads(body)["type"] == "order.created"
    assert json.loads(body)["data"]["id"].startswith("ord_")
    assert event_id.startswith("msg_")
    assert not _beta_ok(inbox.secrets["shop-beta"], body.replace(b"order", b"ORDER", 1), headers)


def test_every_world_draws_its_own_webhook_secrets() -> None:
    """No built-in secret: two worlds' shops (and consulates) sign with different secrets,
    in each platform's format."""
    from portwright.sandbox import consulate

    drawn = []
    for _ in range(2):
        with SandboxWorld([*specs(), *consulate.specs()], seed=9) as running:
            drawn.append(
                {
                    name: running.context(name).options.get("secret")
                    or running.context(name).options["payment_webhook_secret"]
                    for name in ("shop-alpha", "shop-beta", "consulate")
                }
            )
    first, second = drawn
    assert all(first[name] != second[name] for name in first)
    assert first["shop-alpha"].startswith("shpss_")
    assert first["shop-beta"].startswith("whsec_")
    assert first["consulate"].startswith("whsec_")
    assert "shpss_sandbox_alpha_secret" not in {*first.values(), *second.values()}


def test_failed_delivery_is_retried_with_the_same_event_id(
    world: SandboxWorld, inbox: Inbox
) -> None:
    """A receiver error is retried; the ledger shows attempt 1 failed, attempt 2 delivered."""
    inbox.fail_first = True
    world.context("shop-beta").options["duplicate_rate"] = 0.0
    r = httpx.post(f"{world.url('shop-beta')}/_emit/burst", json={"count": 3, "wait": True})
    assert r.json()["delivered"] == 3
    for event_id in r.json()["event_ids"]:
        sends = [e.data for e in world.ledger("shop-beta").entries() if e.key == event_id]
        assert [(s["attempt"], s["delivered"], s["status"]) for s in sends] == [
            (1, False, 500),
            (2, True, 200),
        ]


def _first_order(world: SandboxWorld, shop: str) -> str:
    world.context(shop).options["duplicate_rate"] = 0.0
    httpx.post(f"{world.url(shop)}/_emit/burst", json={"count": 1, "wait": True})
    created = world.ledger(shop).entries("webhook_sent")[0]
    return str(created.data["order_id"])


def test_status_api_is_idempotent_on_the_key(world: SandboxWorld) -> None:
    """Two calls with one Idempotency-Key apply once and answer the same; another body is 422."""
    for shop in ("shop-alpha", "shop-beta"):
        base = world.url(shop)
        order_id = _first_order(world, shop)
        url = f"{base}/api/orders/{order_id}/status"
        body = {"status": "assigned", "driver_id": "drv-7"}
        key = {"Idempotency-Key": f"{shop}-assign-1"}
        first = httpx.post(url, json=body, headers=key)
        again = httpx.post(url, json=body, headers=key)
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert world.ledger(shop).count("status_update", key["Idempotency-Key"]) == 1
        other = httpx.post(url, json={"status": "delivered"}, headers=key)
        assert other.status_code == 422
        assert httpx.post(url, json=body).status_code == 400
        read = httpx.get(f"{base}/api/orders/{order_id}").json()
        assert (read["delivery_status"], read["driver_id"]) == ("assigned", "drv-7")


def test_status_api_answers_503_when_taken_down(world: SandboxWorld) -> None:
    """With the chaos knob `down`, the status API answers 503 and applies nothing."""
    order_id = _first_order(world, "shop-alpha")
    admin = f"{world.admin_url}/services/shop-alpha/chaos"
    assert httpx.patch(admin, json={"down": True}).status_code == 200
    url = f"{world.url('shop-alpha')}/api/orders/{order_id}/status"
    key = {"Idempotency-Key": "down-1"}
    assert httpx.post(url, json={"status": "assigned"}, headers=key).status_code == 503
    assert httpx.get(f"{world.url('shop-alpha')}/_emit/status").status_code == 200
    assert world.ledger("shop-alpha").count("status_update", "down-1") == 0
    httpx.patch(admin, json={"down": False})
    assert httpx.post(url, json={"status": "assigned"}, headers=key).status_code == 200
