"""The consulate's webhook handler ("payment"): a Stripe-style payment event moves the
booking it names forward. `data.object.metadata.client_reference` is the booking job's
id, which gets input "payment" = {"status", "payment_id", "event_id", "hold_id"}.

Installed as `payment` in the `portwright.webhook_handlers` entry-point group; a webhook
source chooses it with `handler = "payment"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from portwright.gateway.webhooks import BodyError, PermanentWebhookError, parse_body
from portwright.orchestrator import ConflictError, JobService
from portwright.store import InboxRecord, JobNotFoundError

if TYPE_CHECKING:
    from portwright.gateway.webhooks import WebhookHandler
    from portwright.store import Store

__all__ = ["PAYMENT_TYPES", "payment_handler", "payment_to_booking"]

PAYMENT_TYPES = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
}


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


def payment_handler(store: Store) -> WebhookHandler:
    """The `portwright.webhook_handlers` entry: the same handler for every store."""
    return payment_to_booking
