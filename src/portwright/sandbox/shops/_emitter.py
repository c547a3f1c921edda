"""The webhook emitter of a shop: a background task sending signed order events.

Started lazily (by POST /_emit/start or by any request while `enabled` is true)
on the loop that serves the shop, never through ASGI lifespan. Every POST of
an event is a ledger entry of kind "webhook_sent" keyed by the event id, with
`attempt` counting every send of that id (retries and deliberate duplicates).
While the shop is down (chaos knob `down`) no new events are produced, unless
option `emit_while_down` is set: then only its order API is down (scenario 5's
outage: webhooks keep coming, status updates fail).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx

from portwright.resilience import Backoff
from portwright.sandbox._world import ServiceContext
from portwright.sandbox.shops._orders import OrderBook, OrderEvent
from portwright.sandbox.shops._platforms import Platform

__all__ = ["DEFAULT_OPTIONS", "Emitter"]

DEFAULT_OPTIONS: dict[str, Any] = {
    "target_url": None,
    "secret": None,  # None: a fresh one drawn when the shop starts (read it from options)
    "enabled": False,
    "rate_per_s": 5.0,
    "max_events": None,
    "duplicate_rate": 0.05,
    "duplicate_delay_s": 0.2,
    "max_attempts": 10,
    "retry_base_s": 0.5,
    "retry_max_s": 30.0,
    "timeout_s": 5.0,
    "emit_while_down": False,
}


class Emitter:
    """Produces order events at `rate_per_s` and delivers each with retries."""

    def __init__(self, ctx: ServiceContext, platform: Platform, book: OrderBook) -> None:
        self.ctx = ctx
        self.platform = platform
        self.book = book
        self.emitted = 0  # events produced by the rate loop (bursts not counted)
        self._seq = 0
        self._sends: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[bool]] = set()
        self._client: httpx.AsyncClient | None = None
        self._gate = asyncio.Semaphore(64)
        if not ctx.options.get("secret"):  # never a built-in secret: this world's own
            ctx.options["secret"] = platform.new_secret()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def inflight(self) -> int:
        return len(self._deliveries)

    def _opt(self, name: str) -> Any:
        return self.ctx.options.get(name, DEFAULT_OPTIONS[name])

    def status(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "enabled": bool(self._opt("enabled")),
            "emitted": self.emitted,
            "generated": self._seq,
            "inflight": self.inflight,
            "target_url": self._opt("target_url"),
        }

    # -- lifecycle -----------------------------------------------------------------------

    def _wanted(self) -> bool:
        cap = self._opt("max_events")
        return bool(self._opt("enabled")) and (cap is None or self.emitted < int(cap))

    def poke(self) -> None:
        """Start the rate loop if it should run and does not."""
        if self._wanted() and not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, *, cancel_pending: bool = False) -> None:
        """Stop producing events; optionally abandon deliveries still retrying."""
        self.ctx.options["enabled"] = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if cancel_pending:
            for task in list(self._deliveries):
                task.cancel()
            await asyncio.gather(*self._deliveries, return_exceptions=True)
        await self._close_if_idle()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while self._wanted():
                down = self.ctx.chaos.is_down() and not self._opt("emit_while_down")
                if down or not self._opt("target_url"):
                    await asyncio.sleep(0.05)
                    next_at = loop.time()
                    continue
                self.emitted += 1
                self.dispatch(self.next_event())
                next_at = max(next_at + 1.0 / float(self._opt("rate_per_s")), loop.time() - 1.0)
                await asyncio.sleep(max(0.0, next_at - loop.time()))
        finally:
            self._task = None
            await self._close_if_idle()

    # -- events and deliveries -----------------------------------------------------------

    def next_event(self) -> OrderEvent:
        """Advance the shop by one event (deterministic under the world seed)."""
        self._seq += 1
        kind, order = self.book.next_change(self._seq, self.ctx.chaos.draw)
        return self.platform.event(self.ctx.seed, self._seq, kind, order)

    def dispatch(self, event: OrderEvent, *, duplicate: bool = False) -> asyncio.Task[bool]:
        """Deliver `event` in the background; the task answers whether it was acknowledged."""
        task = asyncio.get_running_loop().create_task(self._deliver(event, duplicate))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        return task

    async def _deliver(self, event: OrderEvent, duplicate: bool) -> bool:
        closed = False
        try:
            async with self._gate:
                delivered = await self._send_until_acknowledged(event, duplicate)
            rate = float(self._opt("duplicate_rate"))
            if delivered and not duplicate and self.ctx.chaos.chance(rate, f"dup|{event.id}"):
                await asyncio.sleep(float(self._opt("duplicate_delay_s")))
                self.dispatch(event, duplicate=True)
        except GeneratorExit:  # collected unfinished after its loop ended: no loop to tidy on
            closed = True
            raise
        else:
            return delivered
        finally:
            if not closed:
                if (current := asyncio.current_task()) is not None:
                    self._deliveries.discard(current)
                await self._close_if_idle()

    async def _send_until_acknowledged(self, event: OrderEvent, duplicate: bool) -> bool:
        attempts = 0
        while True:
            attempts += 1
            self._sends[event.id] = attempt = self._sends.get(event.id, 0) + 1
            status, error = await self._post(event)
            delivered = status is not None and 200 <= status < 300
            self.ctx.ledger.record(
                "webhook_sent",
                event.id,
                self.platform.name,
                attempt=attempt,
                delivered=delivered,
                status=status,
                error=error,
                duplicate=duplicate,
                event_type=event.kind,
                order_id=event.order_id,
            )
            if delivered or attempts >= int(self._opt("max_attempts")):
                return delivered
            backoff = Backoff(float(self._opt("retry_base_s")), float(self._opt("retry_max_s")))
            await asyncio.sleep(backoff.delay(attempts))

    async def _post(self, event: OrderEvent) -> tuple[int | None, str | None]:
        target = self._opt("target_url")
        if not target:
            return None, "no target_url"
        secret = str(self._opt("secret"))
        headers = self.platform.headers(secret, event, self.ctx.options)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=float(self._opt("timeout_s")))
        try:
            response = await self._client.post(str(target), content=event.body, headers=headers)
        except httpx.HTTPError as exc:
            return None, type(exc).__name__
        return response.status_code, None

    async def _close_if_idle(self) -> None:
        if self._client is not None and not self._deliveries and not self.running:
            client, self._client = self._client, None
            await client.aclose()
