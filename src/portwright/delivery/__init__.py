"""Delivery: the transactional outbox's relay, signed outbound webhooks with retries,
breakers, dead letters and replay, the realtime streams (SSE, WebSocket) and the bus
sinks (NATS JetStream).

`mount_delivery(app, store, check_url=…)` is how the gateway mounts it; a relay can
also run on its own (`python -m portwright.delivery`). Names load lazily, so the
standalone relay does not import the gateway.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portwright.delivery._hub import Hub, Route, Subscription
    from portwright.delivery._mount import PUBLIC_PATHS, DeliveryParts, mount_delivery
    from portwright.delivery._nats import NatsSink, sinks_from
    from portwright.delivery._notify import OutboxListener
    from portwright.delivery._policy import DeliveryPolicy
    from portwright.delivery._relay import DeliveryObserver, Relay, Sink
    from portwright.delivery._senders import SENDERS, Sender, SendResult, envelope
    from portwright.delivery._signing import new_secret, seal_endpoint_secret, sign_headers
    from portwright.delivery._streams import Authenticate, authenticate_ws, pump

__all__ = [
    "PUBLIC_PATHS",
    "SENDERS",
    "Authenticate",
    "DeliveryObserver",
    "DeliveryParts",
    "DeliveryPolicy",
    "Hub",
    "NatsSink",
    "OutboxListener",
    "Relay",
    "Route",
    "SendResult",
    "Sender",
    "Sink",
    "Subscription",
    "authenticate_ws",
    "envelope",
    "mount_delivery",
    "new_secret",
    "pump",
    "seal_endpoint_secret",
    "sign_headers",
    "sinks_from",
]

_HOMES = {
    "Hub": "_hub",
    "Route": "_hub",
    "Subscription": "_hub",
    "PUBLIC_PATHS": "_mount",
    "DeliveryParts": "_mount",
    "mount_delivery": "_mount",
    "NatsSink": "_nats",
    "sinks_from": "_nats",
    "OutboxListener": "_notify",
    "DeliveryPolicy": "_policy",
    "DeliveryObserver": "_relay",
    "Relay": "_relay",
    "Sink": "_relay",
    "SENDERS": "_senders",
    "Sender": "_senders",
    "SendResult": "_senders",
    "envelope": "_senders",
    "new_secret": "_signing",
    "seal_endpoint_secret": "_signing",
    "sign_headers": "_signing",
    "Authenticate": "_streams",
    "authenticate_ws": "_streams",
    "pump": "_streams",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'portwright.delivery' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"portwright.delivery.{home}"), name)
    globals()[name] = value
    return value
