"""Inbound webhooks: signature schemes, the persisted inbox, and its processor."""

from collections.abc import Mapping

from pydantic import SecretStr

from portwright.gateway.webhooks._handlers import (
    DEFAULT_HANDLERS,
    PermanentWebhookError,
    WebhookHandler,
)
from portwright.gateway.webhooks._ingest import HookReceiver, InboxWriter, mount_hooks
from portwright.gateway.webhooks._processor import InboxProcessor
from portwright.gateway.webhooks._schemes import SignatureError, VerifiedEvent, verify
from portwright.settings import WebhookSource

__all__ = [
    "DEFAULT_HANDLERS",
    "HookReceiver",
    "InboxProcessor",
    "InboxWriter",
    "PermanentWebhookError",
    "SignatureError",
    "VerifiedEvent",
    "WebhookHandler",
    "mount_hooks",
    "sandbox_webhook_sources",
    "verify",
]


def sandbox_webhook_sources() -> Mapping[str, WebhookSource]:
    """The sources the sandbox world sends from, with its default (public, test) secrets:
    `consulate` (Stripe-style payments → bookings), `shop-alpha`, `shop-beta`."""
    from portwright.sandbox.shops import ALPHA, BETA

    return {
        "consulate": WebhookSource(
            scheme="stripe", secrets=[SecretStr("whsec_sandbox")], handler="payment"
        ),
        "shop-alpha": WebhookSource(scheme="shopify", secrets=[SecretStr(ALPHA.default_secret)]),
        "shop-beta": WebhookSource(scheme="standard", secrets=[SecretStr(BETA.default_secret)]),
    }
