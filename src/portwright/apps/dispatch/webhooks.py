"""Dispatch's webhook handler ("shop-order"): a shop platform's order event is normalized
and applied by the dispatch service (OrderCreated → OrderAssigned …), its domain events
written to the outbox in the same transaction that marks the inbox row done. The source
needs a `tenant` (whose orders these are).

Installed as `shop-order` in the `portwright.webhook_handlers` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portwright.apps.dispatch._normalize import NormalizeError
from portwright.apps.dispatch._service import Dispatcher, DispatchError
from portwright.gateway.webhooks import PermanentWebhookError

if TYPE_CHECKING:
    from portwright.orchestrator import JobService
    from portwright.store import InboxRecord, Store

__all__ = ["ShopOrderHandler", "shop_order_handler"]


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


def shop_order_handler(store: Store) -> ShopOrderHandler:
    """The `portwright.webhook_handlers` entry: applies through the store's one dispatcher
    (the one whose writes wake the delivery hub, see `mount_routes`)."""
    from portwright.apps.dispatch import dispatcher_for

    return ShopOrderHandler(dispatcher_for(store))
