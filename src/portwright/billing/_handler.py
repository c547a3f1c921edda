"""The inbound webhook handler "billing": payment events from the provider, verified
(Stripe-Signature, through the gateway's verifier) and deduplicated by event id in the
inbox before they reach it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from portwright.billing._service import Billing
from portwright.gateway.webhooks import PermanentWebhookError, parse_body
from portwright.store import InboxRecord

if TYPE_CHECKING:
    from portwright.orchestrator import JobService

__all__ = ["BillingHandler"]


class BillingHandler:
    def __init__(self, billing: Billing) -> None:
        self.billing = billing

    async def __call__(self, event: InboxRecord, service: JobService) -> str:
        payload = parse_body(event.payload)
        if not isinstance(payload, dict):
            raise PermanentWebhookError("a payment event is a JSON object")
        return await asyncio.to_thread(self.billing.handle_event, payload)
