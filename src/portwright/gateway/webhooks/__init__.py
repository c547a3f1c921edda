"""Inbound webhooks: signature schemes, the persisted inbox, and its processor."""

from portwright.gateway.webhooks._handlers import (
    DEFAULT_HANDLERS,
    PermanentWebhookError,
    WebhookHandler,
    installed_handlers,
)
from portwright.gateway.webhooks._ingest import HookReceiver, InboxWriter, mount_hooks
from portwright.gateway.webhooks._json import MAX_DEPTH, BodyError, parse_body
from portwright.gateway.webhooks._processor import InboxProcessor
from portwright.gateway.webhooks._schemes import SignatureError, VerifiedEvent, verify

__all__ = [
    "DEFAULT_HANDLERS",
    "MAX_DEPTH",
    "BodyError",
    "HookReceiver",
    "InboxProcessor",
    "InboxWriter",
    "PermanentWebhookError",
    "SignatureError",
    "VerifiedEvent",
    "WebhookHandler",
    "installed_handlers",
    "mount_hooks",
    "parse_body",
    "verify",
]
