"""The realtime hub's resume path against a real store: no gap, no endless replay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from portwright.delivery import Hub, Route, Subscription
from portwright.store import OutboxRecord, Store
from portwright.testing import wait_until


def _append(store: Store, n: int, *, subject: str, start: int = 0) -> list[int]:
    values = {"topic": "job.state", "tenant_id": "t1", "subject": subject}
    return [
        store.outbox.append(event_id=f"{subject}-{i}", payload={"i": i}, **values)
        for i in range(start, start + n)
    ]


async def test_a_resume_past_many_unwanted_events_ends_and_misses_nothing(tmp_path: Path) -> None:
    """More than a page of events the subscriber filters out, then its own: the replay ends,
    and an event arriving live while the history is read is neither lost nor repeated."""
    store = Store.open(f"sqlite:///{tmp_path / 'app.sqlite'}")
    try:
        _append(store, 1200, subject="other")
        mine = _append(store, 3, subject="mine")
        hub = Hub(store, poll_s=0.05)

        def wanted(event: OutboxRecord) -> bool:
            return event.subject == "mine"

        # an event published (and seen by the hub's tail) while the history is being read
        original = store.outbox.since
        late: list[int] = []

        def since_then_publish(*args: object, **kw: object) -> list[OutboxRecord]:
            page = original(*args, **kw)  # type: ignore[arg-type]
            if not late:
                late.extend(_append(store, 1, subject="mine", start=3))
                for sub in list(hub._subs):
                    sub.offer(store.outbox.by_ids(late)[late[0]])
            return page

        store.outbox.since = since_then_publish  # type: ignore[method-assign]
        sub = await asyncio.wait_for(hub.subscribe("t1", wanted, 0), timeout=30)
        got = []
        while not sub.queue.empty():
            event = await sub.next()
            assert event is not None
            got.append(event.id)
        assert got == [*mine, *late]
    finally:
        store.close()


async def _take(sub: Subscription, n: int, within: float = 10.0) -> list[int]:
    got = []
    for _ in range(n):
        event = await asyncio.wait_for(sub.next(), timeout=within)
        assert event is not None
        got.append(event.id)
    return got


def _event(store: Store, conn: sa.Connection, name: str) -> int:
    return store.outbox.add(conn, event_id=name, topic="job.state", payload={}, tenant_id="t1")


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_later_id_committed_first_waits_for_the_earlier_one(db_url: str) -> None:
    """PostgreSQL hands out ids at insert and shows rows at commit: an event whose id is
    taken before another's but committed after it still reaches live subscribers, in id
    order, and a subscriber joining meanwhile gets it too (its replay stops at the hub's
    position instead of passing the id in flight)."""
    store = Store.open(db_url)
    hub = Hub(store, poll_s=0.05, gap_wait_s=30)
    hub.start()
    try:
        early = await hub.subscribe("t1", lambda _: True, hub.position)
        slow = store.engine.connect()
        slow_tx = slow.begin()
        first = _event(store, slow, "slow")  # id taken, not committed
        with store.engine.begin() as conn:
            second = _event(store, conn, "fast")  # committed first
        assert second > first
        passes = hub.passes
        hub.wake()
        # Two whole passes after "fast" committed (a pass under way at `passes` may have read
        # before it): at least one read it, and held it back instead of handing it out.
        await wait_until(lambda: hub.passes >= passes + 2, timeout=10)
        assert early.queue.empty()  # held: the earlier id may still commit
        late = await hub.subscribe("t1", lambda _: True, 0)  # replays up to the hub's position
        assert late.queue.empty()
        slow_tx.commit()
        slow.close()
        hub.wake()
        assert await _take(early, 2) == [first, second]
        assert await _take(late, 2) == [first, second]
    finally:
        await hub.stop()
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_id_that_never_commits_holds_the_stream_only_briefly(db_url: str) -> None:
    """A rolled-back insert leaves its id unused: after `gap_wait_s` the hub moves on."""
    store = Store.open(db_url)
    hub = Hub(store, poll_s=0.05, gap_wait_s=0.5)
    hub.start()
    try:
        sub = await hub.subscribe("t1", lambda _: True, hub.position)
        with store.engine.connect() as conn:
            tx = conn.begin()
            _event(store, conn, "rolled-back")
            tx.rollback()
        with store.engine.begin() as conn:
            kept = _event(store, conn, "kept")
        hub.wake()
        assert await _take(sub, 1, within=5) == [kept]
    finally:
        await hub.stop()
        store.close()


def _to(event: OutboxRecord) -> list[str]:
    return [str(event.payload.get("to", ""))]


async def test_a_routed_subscription_is_offered_only_its_keys_events(tmp_path: Path) -> None:
    """Subscriptions filed under a key (a driver's sockets) are offered only the events
    their route names them for — the others' are never looked at — while an unrouted one
    sees everything; history is filtered by the match; a closed one is unfiled."""
    store = Store.open(f"sqlite:///{tmp_path / 'app.sqlite'}")
    hub = Hub(store, poll_s=0.05)
    looked: dict[str, list[int]] = {"a": [], "b": []}

    def match(driver: str) -> Callable[[OutboxRecord], bool]:
        def wanted(event: OutboxRecord) -> bool:
            looked[driver].append(event.id)
            return event.payload.get("to") == driver

        return wanted

    def add(to: str, i: int) -> int:
        return store.outbox.append(
            event_id=f"{to}-{i}", topic="order.assigned", payload={"to": to},
            tenant_id="t1", subject=f"o{i}",
        )  # fmt: skip

    try:
        past_a = add("a", 0)
        past_b = add("b", 1)
        hub.start()
        a = await hub.subscribe("t1", match("a"), 0, route=Route(_to, "a"))
        b = await hub.subscribe("t1", match("b"), past_b, route=Route(_to, "b"))
        everyone = await hub.subscribe("t1", lambda _: True, past_b)
        assert await _take(a, 1) == [past_a]  # its history, without b's
        looked["a"].clear()
        live = [add("a", 2), add("a", 3)]
        hub.wake()
        assert await _take(a, 2) == live
        assert await _take(everyone, 2) == live
        assert looked == {"a": live, "b": []}  # b's subscription was never offered them
        assert b.queue.empty()
        to_b = add("b", 4)
        hub.wake()
        assert await _take(b, 1) == [to_b]
        assert looked["a"] == live  # nor a's this one
        hub.unsubscribe(a)
        assert a not in hub.subscriptions()
        assert b in hub.subscriptions()
        hub.unsubscribe(b)
        assert hub.subscriptions() == [everyone]
    finally:
        await hub.stop()
        store.close()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_with_nobody_subscribed_writes_wake_no_reads_yet_a_subscriber_gets_every_later_event(
    db_url: str,
) -> None:
    """Nobody subscribed: the outbox's writes (each a wake-up) make the hub read nothing —
    it only moves its cursor every `unwatched_poll_s` — yet a "from now on" subscriber
    starts at the head (`head()` catches the cursor up, not from an hour-old position)
    and then gets every event committed after it subscribed, in order."""
    store = Store.open(db_url)
    hub = Hub(store, poll_s=0.05, unwatched_poll_s=3600)
    reads: list[str] = []
    ids_since, since = store.outbox.ids_since, store.outbox.since

    def counted_ids_since(*args: object, **kw: object) -> list[int]:
        reads.append("ids")
        return ids_since(*args, **kw)  # type: ignore[arg-type]

    def counted_since(*args: object, **kw: object) -> list[OutboxRecord]:
        reads.append("rows")
        return since(*args, **kw)  # type: ignore[arg-type]

    store.outbox.ids_since = counted_ids_since  # type: ignore[method-assign]
    store.outbox.since = counted_since  # type: ignore[method-assign]
    hub.start()
    try:
        await wait_until(lambda: hub.waiting, timeout=10)  # its first pass is over
        passes, read = hub.passes, len(reads)
        before = _append(store, 30, subject="before")
        for _ in before:
            hub.wake()  # what every write's notification does
            assert hub.waiting  # ignored: nobody is offered anything
        assert hub.passes == passes
        assert len(reads) == read
        assert hub.position < before[-1]  # the unwatched cursor lags …
        start = await hub.head()
        assert start == before[-1]  # … and is caught up for a subscriber "from now on"
        sub = await hub.subscribe("t1", lambda _: True, start)
        after = _append(store, 3, subject="after")
        hub.wake()
        assert await _take(sub, 3) == after
        also = await hub.subscribe("t1", lambda _: True, before[-2])  # resumes from a cursor
        assert await _take(also, 4) == [before[-1], *after]
    finally:
        await hub.stop()
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_unwatched_hub_never_moves_past_an_id_still_in_flight(db_url: str) -> None:
    """Nobody subscribed while a later id commits before an earlier one: the caught-up
    cursor stops before the earlier id, so a subscriber arriving meanwhile still gets it
    when it commits (after it subscribed), then the later one, in id order."""
    store = Store.open(db_url)
    hub = Hub(store, poll_s=0.05, gap_wait_s=30, unwatched_poll_s=3600)
    hub.start()
    try:
        await wait_until(lambda: hub.waiting, timeout=10)
        slow = store.engine.connect()
        slow_tx = slow.begin()
        first = _event(store, slow, "slow")  # id taken, not committed
        with store.engine.begin() as conn:
            second = _event(store, conn, "fast")  # committed first
        start = await hub.head()
        assert start < first
        sub = await hub.subscribe("t1", lambda _: True, start)
        assert sub.queue.empty()
        slow_tx.commit()
        slow.close()
        hub.wake()
        assert await _take(sub, 2) == [first, second]
    finally:
        await hub.stop()
        store.close()
