"""What happens to a verified, persisted webhook event: one handler per kind of source.

- "record" (built in): nothing more; the event stays in the inbox for later consumers.
- any other: an installed app's handler, from the `portwright.webhook_handlers`
  entry-point group (`make(store) -> WebhookHandler`), e.g. the consulate's "payment"
  and dispatch's "shop-order".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from portwright.plugins import WEBHOOK_HANDLERS, load_plugins
from portwright.store import InboxRecord

if TYPE_CHECKING:
    from portwright.orchestrator import JobService
    from portwright.store import Store

__all__ = ["DEFAULT_HANDLERS", "PermanentWebhookError", "WebhookHandler", "installed_handlers"]


class PermanentWebhookError(Exception):
    """Processing this event can never succeed (e.g. it names no known job): no retry."""


class WebhookHandler(Protocol):
    """Processes one inbox event; returns a short note. Raise PermanentWebhookError to give
    up at once; any other exception is retried with backoff."""

    async def __call__(self, event: InboxRecord, service: JobService) -> str: ...


async def record_only(event: InboxRecord, service: JobService) -> str:
    return "recorded"


DEFAULT_HANDLERS: Mapping[str, WebhookHandler] = {"record": record_only}


def installed_handlers(store: Store) -> dict[str, WebhookHandler]:
    """The built-in handlers and every installed app's (`portwright.webhook_handlers`)."""
    made = {name: make(store) for name, make in load_plugins(WEBHOOK_HANDLERS).items()}
    return {**made, **DEFAULT_HANDLERS}
