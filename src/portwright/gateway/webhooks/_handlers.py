"""What happens to a verified, persisted webhook event: one handler per kind of source.

- "record": nothing more; the event stays in the inbox for later consumers.
- "payment": a Stripe-style payment event moves the booking it names forward:
  `data.object.metadata.client_reference` is the booking job's id, which gets
  input "payment" = {"status", "payment_id", "event_id", "hold_id"}.
- "shop-order": a shop platform's order event is normalized and applied by the
  dispatch service (OrderCreated → OrderAssigned …), its domain events written to
  the outbox in the same transaction that marks the inbox row done. The source
  needs a `tenant` (whose orders these are).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from portwright.apps.dispatch import Dispatcher, DispatchError, NormalizeError
from portwright.gateway.webhooks._json import BodyError, parse_body
from portwright.orchestrator import ConflictError, JobService
from portwright.store import InboxRecord, JobNotFoundError

__all__ = ["DEFAULT_HANDLERS", "PermanentWebhookError", "ShopOrderHandler", "WebhookHandler"]

PAYMENT_TYPES = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
}


class PermanentWebhookError(Exception):
    """Processing this event can never succeed (e.g. it names no known job): no retry."""


class WebhookHandler(Protocol):
    """Processes one inbox event; returns a short note. Raise PermanentWebhookError to give
    up at once; any other exception is retried with backoff."""

    async def __call__(self, event: InboxRecord, service: JobService) -> str: ...


async def record_only(event: InboxRecord, service: JobService) -> str:
    return "recorded"


def _object(payload: Any) -> Mapping[str, Any]:
    data = payload.get("data") if isinstance(payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise PermanentWebhookError("event has no data.object")
    return obj


async def payment_to_booking(event: InboxRecord, service: JobService) -> str:
    try:  # verified at ingest; a row from before the depth limit may still be too deep
        payload = parse_body(event.payload)
    except BodyError as exc:
        raise PermanentWebhookError(str(exc)) from None
    status = PAYMENT_TYPES.get(event.event_type)
    if status is None:
        return f"ignored: no action for {event.event_type or 'untyped'} events"
    obj = _object(payload)
    raw_metadata = obj.get("metadata")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    job_id = metadata.get("client_reference")
    if not isinstance(job_id, str) or not job_id:
        raise PermanentWebhookError("data.object.metadata.client_reference: missing")
    value = {
        "status": status,
        "payment_id": obj.get("id"),
        "event_id": event.event_id,
        "hold_id": metadata.get("hold_id"),
    }
    try:
        await service.provide_input(
            job_id,
            "payment",
            value,
            actor=f"webhook:{event.source}",
            tenant_id=event.tenant_id,
            idempotency_key=f"webhook:{event.id}",
        )
    except JobNotFoundError:
        raise PermanentWebhookError(f"no job {job_id} (client_reference)") from None
    except ConflictError as exc:
        raise PermanentWebhookError(str(exc)) from None
    return f"payment {status} sent to job {job_id}"


class ShopOrderHandler:
    """Applies shop order events through `dispatcher` (one made per call when None)."""

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self.dispatcher = dispatcher

    async def __call__(self, event: InboxRecord, service: JobService) -> str:
        dispatcher = self.dispatcher or Dispatcher(service.store)
        try:
            return await dispatcher.ingest(event)
        except (NormalizeError, DispatchError) as exc:
            raise PermanentWebhookError(str(exc)) from None


DEFAULT_HANDLERS: Mapping[str, WebhookHandler] = {
    "record": record_only,
    "payment": payment_to_booking,
    "shop-order": ShopOrderHandler(),
}
