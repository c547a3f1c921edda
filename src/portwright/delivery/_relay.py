"""The relay: outbox → sinks and endpoint deliveries → signed sends, retried, dead-lettered.

Two halves, both safe to run in several processes at once:

- *publish*: unpublished outbox events go to the bus sinks (idempotent message
  ids), then, in one transaction, are claimed and marked published (one
  `UPDATE … RETURNING`, oldest first, skipping rows another relay holds) and fan out
  into deliveries (unique per endpoint and event). A crash anywhere repeats work,
  never loses it. A round takes up to `publish_batch` (1,000) events; while events
  keep coming, rounds start at most every `coalesce_s` (0.1 s): a batch notifies on
  every few rows it writes, and a round per wake-up was mostly fixed cost.
- *deliver*: due deliveries are leased (a crashed relay's lease expires and
  another takes over), sent, and finished: delivered, retried later with
  backoff (Retry-After first), or dead after the endpoint's attempt budget.
  Each endpoint's breaker skips it while open.

It looks at once when woken: by this process (`wake`, e.g. `on_published` of a
local write) and, on PostgreSQL, by any process's outbox write or dead-letter
replay through an `OutboxListener` (LISTEN/NOTIFY). Otherwise it polls every
`poll_s` (0.5 s) — retries fall due by the clock, which nobody notifies — so on
SQLite polling is how other processes' writes are found.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import httpx
import structlog

from portwright.delivery._policy import DeliveryPolicy
from portwright.delivery._senders import SENDERS, Sender, SendResult
from portwright.delivery._signing import SealedSecretError, SecretSealer, open_endpoint
from portwright.resilience import PollingWorker, Round
from portwright.store import (
    DeliveryRecord,
    EndpointRecord,
    OutageBackoff,
    OutboxHead,
    OutboxRecord,
    Store,
)

__all__ = ["DeliveryObserver", "Relay", "Sink"]

log = structlog.get_logger("portwright.delivery")


class Sink(Protocol):
    """A bus the outbox is mirrored to; `publish` must be idempotent on `event_id`.
    An `aclose()` coroutine, if the sink has one, runs when the relay stops."""

    async def publish(self, events: Sequence[OutboxRecord]) -> None: ...


class DeliveryObserver(Protocol):
    """Told about every attempt (metrics)."""

    def attempt(self, kind: str, outcome: str, seconds: float, lag_s: float) -> None: ...


def _recipients(
    endpoints: list[EndpointRecord], event: OutboxHead | OutboxRecord
) -> list[EndpointRecord]:
    """Who receives `event`: with a target (a request's `webhook`), the tenant's webhook
    endpoint at that URL, whatever its topics; else every endpoint that wants the topic."""
    if event.target is None:
        return [e for e in endpoints if e.wants(event.topic, event.platform)]
    found = [e for e in endpoints if e.kind == "webhook" and e.url == event.target][:1]
    if not found:
        log.warning(
            "targeted event has no endpoint: dropped",
            event_id=event.event_id,
            tenant_id=event.tenant_id,
            topic=event.topic,
        )
    return found


class Relay(PollingWorker):
    def __init__(
        self,
        store: Store,
        *,
        client: httpx.AsyncClient | None = None,
        policy: DeliveryPolicy | None = None,
        senders: Mapping[str, Sender] | None = None,
        sinks: Sequence[Sink] = (),
        observer: DeliveryObserver | None = None,
        on_published: Callable[[], None] | None = None,
        batch: int = 100,
        publish_batch: int | None = None,
        coalesce_s: float = 0.1,
        poll_s: float = 0.5,
        lease_s: float = 30.0,
        sealer: SecretSealer | None = None,
    ) -> None:
        super().__init__(
            "relay", poll_s=poll_s, pacer=lambda loop: OutageBackoff(log, loop, first_s=poll_s)
        )
        self.store = store
        self.sealer = sealer  # opens endpoints' sealed signing secrets (the vault)
        self.policy = policy or DeliveryPolicy()
        self.client = client or httpx.AsyncClient(timeout=self.policy.timeout_s, trust_env=False)
        self.senders = dict(senders or SENDERS)
        self.sinks = list(sinks)
        self.observer = observer
        self.on_published = on_published
        self.batch = batch  # deliveries claimed per round
        self.publish_batch = publish_batch or max(batch, 1000)  # events claimed per round
        self.coalesce_s = coalesce_s
        self._published_at: float | None = None  # when the last round that found events began
        self._delivering = False  # the last deliver round found deliveries due
        self.lease_s = lease_s
        self.worker = f"relay-{socket.gethostname()}-{os.getpid()}-{id(self):x}"

    async def on_stop(self) -> None:
        await self.client.aclose()  # the relay owns its client, given or made
        for sink in self.sinks:
            close = getattr(sink, "aclose", None)
            if close is not None:
                await close()

    def rounds(self) -> Sequence[Round]:
        # Each half on its own pacer: a bus sink that is down holds back publishing (events
        # stay in the outbox), not the deliveries already fanned out.
        return [self._publish_round, self._deliver_round]

    async def _deliver_round(self) -> bool:
        self._delivering = bool(await self.deliver_once())
        return self._delivering

    async def run_until_idle(self, *, rounds: int = 1000) -> None:
        """Publish and deliver until nothing is due (tests, the CLI's one-shot mode)."""
        for _ in range(rounds):
            if not await self.publish_once() + await self.deliver_once():
                return

    # -- publish --------------------------------------------------------------------
    async def _publish_round(self) -> bool:
        # Coalesce: right after a round that found events, more are likely on their way
        # (each notifies): wait out `coalesce_s` from that round's start and take them all
        # in one round instead of one round per wake-up. A full round goes on at once.
        # Deliveries still under way are not held up by it: the round is skipped instead.
        last = self._published_at
        if last is not None:
            wait = last + self.coalesce_s - time.monotonic()
            if wait > 0:
                if self._delivering:
                    return False
                await asyncio.sleep(wait)
        began = time.monotonic()
        count = await self.publish_once()
        self._published_at = began if 0 < count < self.publish_batch else None
        return bool(count)

    async def publish_once(self) -> int:
        if self.sinks:
            pending = await asyncio.to_thread(
                self.store.outbox.peek_unpublished, self.publish_batch
            )
            for sink in self.sinks:
                await sink.publish(pending)
        count = await asyncio.to_thread(self._fan_out)
        if count and self.on_published is not None:
            self.on_published()
        return count

    def _fan_out(self) -> int:
        store = self.store
        with store.engine.begin() as conn:
            events = store.outbox.claim_unpublished(conn, self.publish_batch)
            endpoints: dict[str, list[EndpointRecord]] = {}
            for event in events:
                if event.tenant_id is None:
                    continue
                if event.tenant_id not in endpoints:
                    endpoints[event.tenant_id] = store.endpoints.of_tenant(conn, event.tenant_id)
                wanted = _recipients(endpoints[event.tenant_id], event)
                store.deliveries.fan_out(conn, event, wanted)
        return len(events)

    # -- deliver --------------------------------------------------------------------
    async def deliver_once(self) -> int:
        store = self.store
        claimed = await asyncio.to_thread(
            store.deliveries.claim, worker=self.worker, limit=self.batch, lease_s=self.lease_s
        )
        if not claimed:
            return 0
        events = await asyncio.to_thread(store.outbox.by_ids, [d.outbox_id for d in claimed])
        endpoint_ids = {d.endpoint_id for d in claimed}
        endpoints: dict[str, EndpointRecord] = {}
        for i in endpoint_ids:
            with contextlib.suppress(LookupError):  # removed since: its deliveries end dead
                endpoints[i] = await asyncio.to_thread(store.endpoints.get, i)
        await asyncio.gather(
            *(
                self._deliver(d, endpoints[d.endpoint_id], events[d.outbox_id])
                for d in claimed
                if d.endpoint_id in endpoints
            )
        )
        return len(claimed)

    async def _deliver(
        self, delivery: DeliveryRecord, endpoint: EndpointRecord, event: OutboxRecord
    ) -> None:
        sender = self.senders.get(endpoint.kind)
        started = time.perf_counter()
        if sender is None:
            result = SendResult(None, f"no sender for endpoint kind {endpoint.kind!r}")
        else:
            try:  # the secrets in clear for this send only, never kept on the relay
                opened = await asyncio.to_thread(open_endpoint, self.sealer, endpoint)
            except SealedSecretError as exc:
                result = SendResult(None, str(exc))
            else:
                result = await sender(self.client, opened, event)
        seconds = time.perf_counter() - started
        outcome = await asyncio.to_thread(self._settle, delivery, endpoint, result, seconds)
        if self.observer is not None:
            self.observer.attempt(endpoint.kind, outcome, seconds, time.time() - event.created_at)

    def _settle(
        self,
        delivery: DeliveryRecord,
        endpoint: EndpointRecord,
        result: SendResult,
        seconds: float,
    ) -> str:
        store, policy = self.store, self.policy
        duration_ms = seconds * 1000

        def finish(status: str, retry_at: float | None = None) -> None:
            store.deliveries.finish(
                delivery,
                status=status,
                status_code=result.status_code,
                error=result.error,
                duration_ms=duration_ms,
                retry_at=retry_at,
            )

        if result.ok:
            finish("delivered")
            store.endpoints.record_success(endpoint.id)
            return "delivered"
        store.endpoints.record_failure(
            endpoint.id, threshold=policy.breaker_threshold, open_s=policy.breaker_open_s
        )
        if result.permanent or delivery.attempts >= endpoint.max_attempts:
            finish("dead")
            store.endpoints.mark_delayed(endpoint.id)
            log.warning(
                "delivery dead-lettered",
                delivery_id=delivery.id,
                endpoint_id=endpoint.id,
                platform=delivery.platform,
                tenant_id=delivery.tenant_id,
                attempts=delivery.attempts,
                error=result.error,
            )
            return "dead"
        delay = policy.delay(delivery.attempts, result.retry_after)
        finish("pending", time.time() + delay)
        return "retry"
