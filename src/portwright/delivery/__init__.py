"""Delivery: the transactional outbox's relay, signed outbound webhooks with retries,
breakers, dead letters and replay, and the realtime streams (SSE, WebSocket).

`mount_delivery(app, store, check_url=…)` is how the gateway mounts it; a relay can
also run on its own (`python -m portwright.delivery`)."""

from portwright.delivery._hub import Hub, Subscription
from portwright.delivery._mount import PUBLIC_PATHS, DeliveryParts, mount_delivery
from portwright.delivery._policy import DeliveryPolicy, parse_retry_after
from portwright.delivery._relay import DeliveryObserver, Relay, Sink
from portwright.delivery._senders import SENDERS, Sender, SendResult, envelope
from portwright.delivery._signing import new_secret, sign_headers

__all__ = [
    "PUBLIC_PATHS",
    "SENDERS",
    "DeliveryObserver",
    "DeliveryParts",
    "DeliveryPolicy",
    "Hub",
    "Relay",
    "SendResult",
    "Sender",
    "Sink",
    "Subscription",
    "envelope",
    "mount_delivery",
    "new_secret",
    "parse_retry_after",
    "sign_headers",
]
