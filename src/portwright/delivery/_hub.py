"""The realtime hub: tails the outbox and pushes events to this process's subscribers.

Every gateway process tails the shared outbox table by id, so a change written
by any process reaches subscribers of every process (fan-out through the
database). A local write wakes the tail at once (`wake`). On PostgreSQL, writes of
every other process wake it at once too: given an `OutboxListener`, the hub
registers its `wake` there (LISTEN on the channel every outbox insert notifies on
commit) and, while the listener is connected, polls only as a safety net every
`listened_poll_s` (2 s); without a listener (SQLite), or while it reconnects,
others' writes are seen at the next `poll_s` (0.2 s) poll.

A subscriber resumes from a cursor: it is registered first, then sent the
history after its cursor, and ids it has already seen are skipped.

With nobody subscribed the hub has nothing to hand out, only its cursor to keep near the
head: wake-ups are ignored and it reads the new ids (not the rows) once every
`unwatched_poll_s` (2 s), up to 10,000 at a time, with the same gap rule as below. A
subscriber arriving wakes it: its history is replayed up to the hub's cursor and what
came after comes live, in order, as before. A "from now on" subscriber asks `head()`,
which first catches the cursor up (so it does not start up to 2 s in the past).

A subscription may be routed (`Route`): it is filed under one key of its tenant, and a
live event is offered only to the subscriptions filed under the keys the route's `keys_of`
names for it (a driver's socket under its driver id: an order assigned to one of 5,000
drivers is one offer, not 5,000). Unrouted subscriptions are offered every event.

Ids are the cursor, so the hub hands out events strictly in id order with no id
skipped while it could still appear. On PostgreSQL an id is taken when a row is
inserted but seen only when its transaction commits, so a later id can commit
first: the hub then holds everything after the missing id until it commits, or
until `gap_wait_s` (3 s) says it never will (its transaction rolled back). History
replays stop at the same position (`position`), so a subscriber's cursor never
passes an event still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from portwright.resilience import PollingWorker, Round
from portwright.store import OutageBackoff, OutboxRecord, Store

if TYPE_CHECKING:
    from portwright.delivery._notify import OutboxListener

__all__ = ["Hub", "Route", "Subscription"]

log = structlog.get_logger("portwright.realtime")
Match = Callable[[OutboxRecord], bool]
Keys = Callable[[OutboxRecord], Iterable[str]]


@dataclass(frozen=True, slots=True)
class Route:
    """File a subscription under `key` of its tenant. `keys_of` (one function shared by
    every subscription of its kind: the hub keeps an index per function) names the keys an
    event goes to; the subscription's `match` still decides, and filters its history."""

    keys_of: Keys
    key: str


@dataclass(eq=False)
class Subscription:
    tenant_id: str | None
    match: Match
    cursor: int
    queue: asyncio.Queue[OutboxRecord | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=10_000)
    )
    # While its history is replayed, live events wait here: queued at once they would move
    # the cursor past history not yet replayed, which would then be skipped as seen.
    replaying: bool = True
    held: list[OutboxRecord] = field(default_factory=list)
    route: Route | None = None

    def offer(self, event: OutboxRecord, *, live: bool = True) -> bool:
        """Queue `event` if it is new and wanted; False when the subscriber fell too far behind."""
        if live and self.replaying:
            self.held.append(event)
            return len(self.held) <= 10_000
        if event.id <= self.cursor or not self.match(event):
            return True
        if self.tenant_id is not None and event.tenant_id != self.tenant_id:
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        self.cursor = event.id
        return True

    async def next(self) -> OutboxRecord | None:
        """The next event, or None once the hub dropped this subscriber (resync needed)."""
        return await self.queue.get()

    def drain(self) -> list[OutboxRecord | None]:
        """What is queued already, without waiting (the hub hands events over in batches)."""
        ready: list[OutboxRecord | None] = []
        while not self.queue.empty():
            ready.append(self.queue.get_nowait())
        return ready


class Hub(PollingWorker):
    def __init__(
        self,
        store: Store,
        *,
        poll_s: float = 0.2,
        listener: OutboxListener | None = None,
        listened_poll_s: float = 2.0,
        gap_wait_s: float = 3.0,
        unwatched_poll_s: float = 2.0,
    ) -> None:
        super().__init__(
            "hub", poll_s=poll_s, pacer=lambda loop: OutageBackoff(log, loop, first_s=poll_s)
        )
        self.store = store
        self.listener = listener
        self.listened_poll_s = max(poll_s, listened_poll_s)
        self.gap_wait_s = gap_wait_s
        self.unwatched_poll_s = max(poll_s, unwatched_poll_s)
        self._subs: set[Subscription] = set()  # offered every event
        # routed subscriptions: per `keys_of`, by (tenant, key)
        self._routes: dict[Keys, dict[tuple[str | None, str], set[Subscription]]] = {}
        self._cursor = 0
        self._gap: tuple[int, float] | None = None  # (missing id, when first seen missing)
        self._held = False  # the last round held events back for an earlier id
        self._tailing = asyncio.Lock()  # one tail at a time: the loop's, or `head()`'s
        if listener is not None:
            listener.add(self.wake)

    @property
    def watched(self) -> bool:
        """Whether anybody is subscribed (else the hub only keeps its cursor near the head)."""
        return bool(self._subs or self._routes)

    def wake(self) -> None:
        """Look now, not at the next poll; ignored while nobody is subscribed (the cursor
        moves on every `unwatched_poll_s`: a batch's writes would wake it for every few ids)."""
        if self.watched:
            super().wake()

    def idle_s(self) -> float:
        """How long to wait for a wake-up: long while notifications are sure to come, short
        while an earlier id may still commit; `unwatched_poll_s` while nobody is subscribed."""
        if not self.watched:
            return self.unwatched_poll_s
        if self.listener is not None and self.listener.connected:
            idle = self.listened_poll_s
        else:
            idle = self.poll_s
        return min(0.05, idle) if self._held else idle

    @property
    def position(self) -> int:
        """The last id handed out: every event up to it has been committed (or given up
        on). With nobody subscribed it may lag up to `unwatched_poll_s`: a subscriber that
        wants "from now on" starts at `await head()`."""
        return self._cursor

    async def head(self) -> int:
        """`position` after catching the cursor up now if nobody was subscribed (the
        unwatched cursor may be up to `unwatched_poll_s` behind): where a "from now on"
        subscriber starts."""
        if self._task is not None and not self.watched:
            while await self._tail():
                pass
        return self._cursor

    def on_start(self) -> None:
        self._cursor = self.store.outbox.last_id()

    async def on_stop(self) -> None:
        for sub in self.subscriptions():
            self._drop(sub)

    def subscriptions(self) -> list[Subscription]:
        """Every registered subscription, routed or not."""
        routed = [s for table in self._routes.values() for subs in table.values() for s in subs]
        return [*self._subs, *routed]

    async def subscribe(
        self, tenant_id: str | None, match: Match, cursor: int, *, route: Route | None = None
    ) -> Subscription:
        """Register, then replay history after `cursor` (so nothing falls in between)."""
        sub = Subscription(tenant_id, match, cursor, route=route)
        if route is None:
            self._subs.add(sub)
        else:
            table = self._routes.setdefault(route.keys_of, {})
            table.setdefault((tenant_id, route.key), set()).add(sub)
        self.wake()  # the tail may sit in its unwatched pause: live events come from now on
        position = cursor  # read on past events the subscriber does not want
        # Not past what the hub has handed out: later ids come live, in order.
        until = self._cursor if self._task is not None else None
        while True:
            history = await asyncio.to_thread(
                self.store.outbox.since, position, tenant_id=tenant_id, until=until
            )
            for event in history:
                if not sub.offer(event, live=False):
                    self._drop(sub)
                    return sub
            if history:
                position = history[-1].id
            if len(history) < 500:
                break
        sub.replaying = False
        held, sub.held = sub.held, []
        for event in held:  # what arrived live meanwhile; ids already replayed are skipped
            if not sub.offer(event, live=False):
                self._drop(sub)
                break
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        route = sub.route
        if route is None:
            self._subs.discard(sub)
            return
        table = self._routes.get(route.keys_of)
        if table is None:
            return
        key = (sub.tenant_id, route.key)
        filed = table.get(key)
        if filed is not None:
            filed.discard(sub)
            if not filed:
                del table[key]
        if not table:
            del self._routes[route.keys_of]

    def _drop(self, sub: Subscription) -> None:
        self.unsubscribe(sub)
        with contextlib.suppress(asyncio.QueueFull):
            sub.queue.put_nowait(None)

    def rounds(self) -> Sequence[Round]:
        return [self._tail]

    async def _tail(self) -> bool:
        """Hand out the next committed events in id order; busy while a full page came.
        With nobody subscribed only the ids are read, a larger page at a time (the cursor
        moves on as it would; a batch writes three events per item, and decoding rows
        nobody is offered was a few per cent of a worker's CPU)."""
        async with self._tailing:
            return await self._tail_once()

    async def _tail_once(self) -> bool:
        self._held = False
        ids: list[int] | None = None
        events: list[OutboxRecord] = []
        page = 1000
        if not self.watched:
            page = 10_000
            ids = await asyncio.to_thread(self.store.outbox.ids_since, self._cursor, limit=page)
            if self._subs or self._routes:  # subscribed meanwhile: they get these events
                ids = None
                page = 1000
        if ids is None:
            events = await asyncio.to_thread(self.store.outbox.since, self._cursor, limit=page)
            ids = [event.id for event in events]
        for index, event_id in enumerate(ids):
            if event_id != self._cursor + 1 and self._waiting_for(self._cursor + 1):
                self._held = True  # an earlier id may still commit: look again shortly
                break
            self._gap = None
            self._cursor = event_id
            if events:
                event = events[index]
                for sub in self._offered(event):
                    if not sub.offer(event):
                        self._drop(sub)
        return len(ids) == page and not self._held

    def _offered(self, event: OutboxRecord) -> list[Subscription]:
        """The subscriptions `event` is offered to: every unrouted one, and the routed ones
        filed under the keys their route names for it (each once)."""
        subs = list(self._subs)
        for keys_of, table in list(self._routes.items()):
            for key in set(keys_of(event)):
                subs.extend(table.get((event.tenant_id, key), ()))
                if event.tenant_id is not None:  # filed without a tenant: all tenants'
                    subs.extend(table.get((None, key), ()))
        return subs

    def _waiting_for(self, missing: int) -> bool:
        """Whether to keep holding events after `missing` (not yet committed, or never)."""
        now = time.monotonic()
        if self._gap is None or self._gap[0] != missing:
            self._gap = (missing, now)
        if now - self._gap[1] < self.gap_wait_s:
            return True
        log.info("outbox id never committed; moving on", missing_id=missing)
        return False
