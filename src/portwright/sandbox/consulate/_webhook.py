"""The consulate's payment webhooks, signed the way Stripe signs them.

    Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>

Delivery is retried with exponential backoff while the receiver fails (error,
timeout or non-2xx); every attempt carries the same event id and a fresh
signature. Ledger kind "webhook", key = the event id, once per event.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

from portwright.resilience import Backoff
from portwright.sandbox._ledger import Ledger

__all__ = ["deliver", "payment_event", "sign"]

log = logging.getLogger(__name__)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Stripe-Signature` header value for `body` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def payment_event(
    event_id: str,
    *,
    succeeded: bool,
    payment_id: str,
    amount: int,
    currency: str,
    hold_id: str,
    client_reference: str,
) -> dict[str, Any]:
    """A `payment_intent.succeeded` / `payment_intent.payment_failed` event body."""
    return {
        "id": event_id,
        "object": "event",
        "created": int(time.time()),
        "type": "payment_intent.succeeded" if succeeded else "payment_intent.payment_failed",
        "data": {
            "object": {
                "id": payment_id,
                "object": "payment_intent",
                "amount": amount,
                "currency": currency.lower(),
                "status": "succeeded" if succeeded else "requires_payment_method",
                "metadata": {"hold_id": hold_id, "client_reference": client_reference},
            }
        },
    }


async def deliver(
    url: str,
    secret: str,
    event: dict[str, Any],
    *,
    ledger: Ledger,
    attempts: int = 5,
    backoff_s: float = 0.25,
) -> bool:
    """POST `event` to `url` until a 2xx answer or `attempts` run out; whether it landed."""
    body = json.dumps(event, separators=(",", ":")).encode()
    status: int | None = None
    async with httpx.AsyncClient(timeout=5.0) as client:
        for attempt in range(1, attempts + 1):
            headers = {
                "content-type": "application/json",
                "stripe-signature": sign(secret, body, int(time.time())),
                "user-agent": "SandboxConsulate-Webhooks/1.0",
            }
            try:
                response = await client.post(url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                log.info("webhook %s attempt %d failed: %s", event["id"], attempt, exc)
                status = None
            if status is not None and 200 <= status < 300:
                ledger.record("webhook", event["id"], "consulate", attempts=attempt, status=status)
                return True
            if attempt < attempts:
                await asyncio.sleep(Backoff(backoff_s, 60.0).delay(attempt))
    ledger.record("webhook", event["id"], "consulate", attempts=attempts, status=status)
    log.warning("webhook %s to %s not delivered after %d attempts", event["id"], url, attempts)
    return False
