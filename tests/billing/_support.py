"""Helpers for the billing tests: an owner signed in to the portal, a checkout confirmed the
way Stripe.js confirms it (a card payment method on the SetupIntent), invoices read from
localstripe directly."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

import httpx

from tests.billing.conftest import Billed

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then every charge is declined


def owner_session(billed: Billed) -> tuple[httpx.Client, str, str, str]:
    """(client, csrf, email, tenant id) of a new tenant's signed-in owner."""
    email, tenant_id = billed.portal.owner()
    http, csrf = billed.portal.login(email)
    return http, csrf, email, tenant_id


def card(billed: Billed, number: str) -> str:
    pm = billed.stripe.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    return str(pm.id)


def start_checkout(http: httpx.Client, csrf: str, plan: str) -> tuple[str, str]:
    page = http.post("/app/billing/checkout", data={"plan": plan, "csrf_token": csrf})
    assert page.status_code == 200, page.text
    found = re.search(r"/app/billing/checkout/(seti_\w+)/complete", page.text)
    secret = re.search(r'data-client-secret="([^"]+)"', page.text)
    assert found, page.text
    assert secret, page.text
    return found.group(1), secret.group(1)


def checkout(
    billed: Billed, http: httpx.Client, csrf: str, plan: str, number: str = GOOD_CARD
) -> httpx.Response:
    """Subscribe through the portal: start, confirm the card (as Stripe.js does), complete."""
    checkout_id, _ = start_checkout(http, csrf, plan)
    billed.stripe.v1.setup_intents.confirm(
        checkout_id, params={"payment_method": card(billed, number)}
    )
    return http.post(f"/app/billing/checkout/{checkout_id}/complete", data={"csrf_token": csrf})


def provider_invoices(billed: Billed, customer_id: str) -> list[dict[str, Any]]:
    found = billed.stripe.v1.invoices.list(params={"customer": customer_id})
    return [inv.to_dict() for inv in found.data]


def signed(secret: str, body: bytes, at: float | None = None) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={stamp},v1={mac}", "content-type": "application/json"}


def event(kind: str, obj: dict[str, Any], event_id: str) -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}
    ).encode()


def fill_card(card: Any, number: str = GOOD_CARD) -> None:
    """Fill localstripe's Stripe.js card element (its five inputs) with `number`."""
    card.locator("input[placeholder=number]").fill(number)
    card.locator("input[placeholder=exp_month]").fill("12")
    card.locator("input[placeholder=exp_year]").fill("34")
    card.locator("input[placeholder=cvc]").fill("123")
    card.locator("input[placeholder=postal_code]").fill("10115")
