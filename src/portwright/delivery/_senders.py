"""How one delivery is sent: a signed webhook, or a status update to a shop's order API.

A sender returns a `SendResult`; it never raises for an HTTP or network error.
2xx is success; 408, 425, 429 and 5xx (and network errors) are retried; any
other 4xx is permanent (dead at once).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from portwright.delivery._signing import sign_headers
from portwright.resilience import parse_retry_after
from portwright.store import EndpointRecord, OutboxRecord

__all__ = ["SENDERS", "SendResult", "Sender", "ShopStatusSender", "WebhookSender"]

RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def permanent(self) -> bool:
        code = self.status_code
        return code is not None and 400 <= code < 500 and code not in RETRYABLE


class Sender(Protocol):
    async def __call__(
        self, client: httpx.AsyncClient, endpoint: EndpointRecord, event: OutboxRecord
    ) -> SendResult: ...


def envelope(event: OutboxRecord) -> bytes:
    """The JSON body of an outbound webhook (Standard Webhooks' {type, timestamp, data})."""
    data = {
        "type": event.topic,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.created_at)),
        "data": {**event.payload, "event_id": event.event_id, "cursor": event.id},
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]
) -> SendResult:
    try:
        response = await client.post(url, content=body, headers=dict(headers))
    except httpx.HTTPError as exc:
        return SendResult(None, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - e.g. the SSRF guard refusing the address
        return SendResult(None, f"{type(exc).__name__}: {exc}")
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
    error = None if response.is_success else response.text[:200]
    return SendResult(response.status_code, error, retry_after)


class WebhookSender:
    """POST the event, signed with the endpoint's secrets; `webhook-id` is the event's id,
    so every retry and replay of one event carries the same id."""

    async def __call__(
        self, client: httpx.AsyncClient, endpoint: EndpointRecord, event: OutboxRecord
    ) -> SendResult:
        body = envelope(event)
        headers = sign_headers(endpoint.secrets, event.event_id, int(time.time()), body)
        headers["content-type"] = "application/json"
        return await _post(client, endpoint.url, body, headers)


class ShopStatusSender:
    """POST {url}/api/orders/{order_id}/status with `Idempotency-Key` = the event id, so every
    retry and replay of one change applies once; the change's `version` (when the event
    has one) lets the platform ignore a change older than one it already applied."""

    async def __call__(
        self, client: httpx.AsyncClient, endpoint: EndpointRecord, event: OutboxRecord
    ) -> SendResult:
        payload = event.payload
        order_id, status = payload.get("order_id"), payload.get("status")
        if not order_id or not status:
            return SendResult(None, f"event {event.topic}: no order_id and status to sync")
        update: dict[str, object] = {"status": status, "driver_id": payload.get("driver_id")}
        if isinstance(payload.get("version"), int):
            update["version"] = payload["version"]
        body = json.dumps(update).encode()
        url = f"{endpoint.url.rstrip('/')}/api/orders/{order_id}/status"
        headers = {"content-type": "application/json", "idempotency-key": event.event_id}
        return await _post(client, url, body, headers)


SENDERS: Mapping[str, Sender] = {"webhook": WebhookSender(), "shop-status": ShopStatusSender()}
