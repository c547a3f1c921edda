"""The inbox processor: claims persisted webhook events and runs their source's handler.

Runs inside the gateway process (started and stopped by the app's lifespan);
several gateway processes can run one each, since claims are leased rows.
Woken at once after an insert, and polls otherwise (events left by a crash,
retries coming due).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping, Sequence

import structlog

from portwright.gateway.webhooks._handlers import PermanentWebhookError, WebhookHandler
from portwright.orchestrator import JobService
from portwright.resilience import Backoff, PollingWorker, Round
from portwright.store import FinishedNote, InboxRecord, OutageBackoff

__all__ = ["InboxProcessor"]

log = structlog.get_logger("portwright.webhooks")


RETRY_BACKOFF = Backoff(0.5, 300.0, jitter=0.2)  # between a failed handler's attempts


class InboxProcessor(PollingWorker):
    def __init__(
        self,
        service: JobService,
        handlers: Mapping[str, WebhookHandler],
        handler_of_source: Mapping[str, str],
        *,
        poll_s: float = 1.0,
        lease_s: float = 60.0,
        max_attempts: int = 8,
        batch: int = 50,
    ) -> None:
        super().__init__(
            "inbox", poll_s=poll_s, pacer=lambda loop: OutageBackoff(log, loop, first_s=poll_s)
        )
        self.service = service
        self.handlers = dict(handlers)
        self.handler_of_source = dict(handler_of_source)
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.batch = batch
        self.worker = f"gateway-{socket.gethostname()}-{os.getpid()}-{id(self):x}"

    def rounds(self) -> Sequence[Round]:
        return [self._poll]

    async def _poll(self) -> bool:
        return bool(await self.run_once())

    async def run_once(self) -> int:
        """Claim and process one batch of due events; returns how many were claimed."""
        store = self.service.store
        events = await asyncio.to_thread(
            store.inbox.claim, worker=self.worker, limit=self.batch, lease_s=self.lease_s
        )
        if events:
            outcomes = await asyncio.gather(*(self._process(event) for event in events))
            done = {  # a FinishedNote's row was finished by its handler's own transaction
                event.id: note
                for event, note in zip(events, outcomes, strict=True)
                if note is not None and not isinstance(note, FinishedNote)
            }
            await asyncio.to_thread(store.inbox.finish_many, list(done), status="done", result=done)
        return len(events)

    async def _process(self, event: InboxRecord) -> str | None:
        """Run the handler; returns its note on success (the caller marks the row done),
        None when the row was already marked failed, dead or due for a retry."""
        store = self.service.store
        name = self.handler_of_source.get(event.source, "record")
        handler = self.handlers.get(name)
        if handler is None:
            reason = f"no webhook handler named {name!r}"
            await asyncio.to_thread(store.inbox.finish, event.id, status="failed", result=reason)
            return None
        try:
            note = await handler(event, self.service)
        except PermanentWebhookError as exc:
            log.warning(
                "webhook event failed", inbox_id=event.id, source=event.source, error=str(exc)
            )
            await asyncio.to_thread(store.inbox.finish, event.id, status="failed", result=str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - any other failure is retried, then dead
            error = f"{type(exc).__name__}: {exc}"
            if event.attempts >= self.max_attempts:
                log.warning(
                    "webhook event dead", inbox_id=event.id, source=event.source, error=error
                )
                await asyncio.to_thread(store.inbox.finish, event.id, status="dead", result=error)
                return None
            delay = RETRY_BACKOFF.delay(event.attempts)
            await asyncio.to_thread(
                store.inbox.retry_at, event.id, at=time.time() + delay, error=error
            )
            return None
        return note
