"""The NATS JetStream bus sink: the outbox mirrored to a stream, once per event.

Every event is published on ``<prefix>.<topic>`` with ``Nats-Msg-Id`` set to its
event id, so JetStream's duplicate window drops the repeats a crashed or
restarted relay sends (the relay publishes before it marks an event published).
Off unless `PORTWRIGHT_NATS_URL` is set; `sinks_from(settings)` builds it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import nats
import structlog
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from portwright.delivery._relay import Sink
from portwright.settings import Settings
from portwright.store import OutboxRecord

__all__ = ["NatsSink", "sinks_from"]

log = structlog.get_logger("portwright.delivery.nats")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class NatsSink:
    """Publishes outbox events to a JetStream stream with idempotent message ids."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = "PORTWRIGHT",
        subject_prefix: str = "portwright",
        duplicate_window_s: float = 3600.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.duplicate_window_s = duplicate_window_s
        self.timeout_s = timeout_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    def __repr__(self) -> str:
        return f"NatsSink(stream={self.stream!r})"  # the URL may carry credentials

    def subject(self, event: OutboxRecord) -> str:
        topic = _UNSAFE.sub("_", event.topic).strip(".") or "event"
        return f"{self.subject_prefix}.{topic}"

    async def _stream(self) -> JetStreamContext:
        if self._js is not None:
            return self._js
        nc = await nats.connect(self.url, connect_timeout=self.timeout_s, max_reconnect_attempts=3)
        js = nc.jetstream(timeout=self.timeout_s)
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(
                name=self.stream,
                subjects=[f"{self.subject_prefix}.>"],
                duplicate_window=self.duplicate_window_s,
            )
        self._nc, self._js = nc, js
        return js

    async def publish(self, events: Sequence[OutboxRecord]) -> None:
        """Publish each event and wait for JetStream's ack; a repeat is acked as duplicate."""
        if not events:
            return
        try:
            js = await self._stream()
            for event in events:
                body = {
                    "id": event.event_id,
                    "type": event.topic,
                    "tenant_id": event.tenant_id,
                    "subject": event.subject,
                    "platform": event.platform,
                    "data": event.payload,
                    "at": event.created_at,
                }
                await js.publish(
                    self.subject(event),
                    json.dumps(body, separators=(",", ":")).encode(),
                    stream=self.stream,
                    headers={"Nats-Msg-Id": event.event_id},
                )
        except (NatsError, OSError) as exc:
            await self.aclose()  # reconnect on the next round
            message = f"nats sink: publishing to stream {self.stream} failed: {exc!r}"
            raise ConnectionError(message) from exc

    async def aclose(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except (NatsError, OSError):
                log.warning("nats sink: drain failed", stream=self.stream)


def sinks_from(settings: Settings) -> list[Sink]:
    """The bus sinks the settings turn on (none by default)."""
    sinks: list[Sink] = []
    if settings.nats_url:
        sinks.append(NatsSink(settings.nats_url, stream=settings.nats_stream))
    return sinks
