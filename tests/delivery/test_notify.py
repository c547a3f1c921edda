"""Cross-process wake-ups over PostgreSQL LISTEN/NOTIFY.

Hubs and relays here poll every 30 s, so anything they do within a few seconds was
caused by a notification: a write committed by another OS process (or another
Store, as another gateway process would have) reaches a subscriber of this hub, a
replayed dead letter reaches this relay, and the listener survives its connection
being killed. Without the notify (or the listener) these tests time out.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from portwright.delivery import Hub, OutboxListener, Relay, SendResult, Subscription
from portwright.settings import Settings
from portwright.store import DeliveryFilter, EndpointRecord, OutboxRecord, Store
from portwright.testing import wait_until

SLOW_POLL_S = 30.0  # nothing here may rely on a poll
ARRIVES_S = 5.0  # generous, and well under the poll


@pytest.fixture
def stores(db_url: str) -> Iterator[tuple[Store, Store]]:
    """Two independent stores on one database: what two gateway processes hold."""
    url = Settings(database_url=db_url).app_database_url
    first = Store.open(url)
    second = Store.open(url, run_migrations=False)
    try:
        yield first, second
    finally:
        second.close()
        first.close()


@asynccontextmanager
async def listening(store: Store) -> AsyncIterator[OutboxListener]:
    listener = OutboxListener(
        store, application_name=f"pw-test-{secrets.token_hex(4)}", backoff_s=0.1
    )
    listener.start()
    try:
        await wait_until(lambda: listener.connected, timeout=ARRIVES_S)
        yield listener
    finally:
        await listener.stop()


async def _append_from_another_process(url: str, event_id: str) -> None:
    """Commit one outbox row from a separate Python process (a second gateway, a worker)."""
    code = (
        "import sys\n"
        "from portwright.store import Store\n"
        "store = Store.open(sys.argv[1], run_migrations=False)\n"
        "store.outbox.append(event_id=sys.argv[2], topic='job.state', tenant_id='t1',"
        " subject='remote', payload={'from': 'elsewhere'})\n"
        "store.close()\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, url, event_id)
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 0


async def _next(sub: Subscription) -> OutboxRecord:
    event = await asyncio.wait_for(sub.next(), timeout=ARRIVES_S)
    assert event is not None, "the hub dropped the subscriber"
    return event


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_write_in_another_process_reaches_this_hub_at_once(
    stores: tuple[Store, Store],
) -> None:
    """Two hubs (two gateways) polling every 30 s: an event committed by a third OS process,
    and then one through the other hub's store, reach a subscriber of each hub in seconds."""
    mine, theirs = stores
    async with listening(mine) as listener_a, listening(theirs) as listener_b:
        hub_a = Hub(mine, poll_s=SLOW_POLL_S, listener=listener_a)
        hub_b = Hub(theirs, poll_s=SLOW_POLL_S, listener=listener_b)
        hub_a.start()
        hub_b.start()
        try:
            cursor = mine.outbox.last_id()
            sub_a = await hub_a.subscribe("t1", lambda e: True, cursor)
            sub_b = await hub_b.subscribe("t1", lambda e: True, cursor)
            # both tails have made their first pass and sit in their (30 s) idle wait
            await wait_until(lambda: hub_a.waiting and hub_b.waiting, timeout=ARRIVES_S)

            url = mine.engine.url.render_as_string(hide_password=False)
            await _append_from_another_process(url, "e1")
            assert (await _next(sub_a)).event_id == "e1"
            assert (await _next(sub_b)).event_id == "e1"

            theirs.outbox.append(event_id="e2", topic="job.state", tenant_id="t1", payload={})
            assert (await _next(sub_a)).event_id == "e2"
            assert (await _next(sub_b)).event_id == "e2"
        finally:
            await hub_b.stop()
            await hub_a.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_only_a_commit_notifies(stores: tuple[Store, Store]) -> None:
    """The notification travels with the transaction: none for a rollback, one on commit."""
    mine, theirs = stores
    wakes: list[int] = []
    async with listening(mine) as listener:
        listener.add(lambda: wakes.append(1))
        with theirs.engine.connect() as conn, conn.begin() as tx:
            theirs.outbox.add(conn, event_id="rolled-back", topic="job.state", payload={})
            tx.rollback()
        with theirs.engine.begin() as conn:
            for n in range(3):
                theirs.outbox.add(conn, event_id=f"c{n}", topic="job.state", payload={})
        await wait_until(lambda: wakes, timeout=ARRIVES_S)
        # A marker commit: PostgreSQL delivers notifications to the listening session in
        # commit order and the listener fires once per notification, so once the marker's
        # wake is in, any notification of the rollback or a second one of the 3-row
        # transaction has been counted too.
        with theirs.engine.begin() as conn:
            theirs.outbox.add(conn, event_id="marker", topic="job.state", payload={})
        await wait_until(lambda: len(wakes) >= 2, timeout=ARRIVES_S)
        assert len(wakes) == 2, "no wake for a rollback; one transaction's notifications collapse"


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_the_listener_survives_its_connection_being_killed(
    stores: tuple[Store, Store],
) -> None:
    """pg_terminate_backend on the listening connection: it reconnects (waking the hub once,
    in case something was missed), and a remote write wakes the hub again afterwards."""
    mine, theirs = stores
    async with listening(mine) as listener:
        hub = Hub(mine, poll_s=SLOW_POLL_S, listener=listener)
        hub.start()
        try:
            sub = await hub.subscribe("t1", lambda e: True, mine.outbox.last_id())
            await wait_until(lambda: hub.waiting, timeout=ARRIVES_S)  # in its 30 s idle wait

            with theirs.engine.connect() as conn:
                pid = conn.execute(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": listener.application_name},
                ).scalar_one()
                assert pid == listener.backend_pid
                # written while nobody listens: the reconnect's wake-up must find it
                conn.execute(sa.select(sa.func.pg_terminate_backend(pid)))
                conn.commit()
            theirs.outbox.append(event_id="missed", topic="job.state", tenant_id="t1", payload={})
            assert (await _next(sub)).event_id == "missed"
            await wait_until(lambda: listener.connected and listener.connects == 2, timeout=5)
            assert listener.backend_pid != pid

            await wait_until(lambda: hub.waiting, timeout=ARRIVES_S)  # the reconnect pass is over
            theirs.outbox.append(event_id="after", topic="job.state", tenant_id="t1", payload={})
            assert (await _next(sub)).event_id == "after"
        finally:
            await hub.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_replay_in_another_process_wakes_this_relay(stores: tuple[Store, Store]) -> None:
    """A relay polling every 30 s sends an event another process wrote, and a dead letter
    another process (the API, the console) replayed, within seconds."""
    mine, theirs = stores
    outcomes = [500, 200]
    sent: list[str] = []

    async def sender(
        client: httpx.AsyncClient, endpoint: EndpointRecord, event: OutboxRecord
    ) -> SendResult:
        sent.append(event.event_id)
        return SendResult(outcomes.pop(0))

    tenant = mine.tenants.ensure("notify-relay")
    mine.endpoints.create(
        tenant_id=tenant.id, url="https://hooks.invalid/x", secrets=["whsec_x"], max_attempts=1
    )
    async with listening(mine) as listener:
        relay = Relay(mine, senders={"webhook": sender}, poll_s=SLOW_POLL_S)
        listener.add(relay.wake)
        relay.start()
        try:
            await wait_until(lambda: relay.waiting, timeout=ARRIVES_S)  # in its 30 s idle wait
            theirs.outbox.append(event_id="r1", topic="job.state", tenant_id=tenant.id, payload={})

            def status() -> set[str]:
                found = mine.deliveries.search(DeliveryFilter(tenant_id=tenant.id))
                return {d.status for d in found}

            # dead, and the pass that found it so is over: only a wake can send it again
            await wait_until(lambda: status() == {"dead"} and relay.waiting, timeout=ARRIVES_S)
            assert theirs.deliveries.replay(DeliveryFilter(tenant_id=tenant.id)) == 1
            await wait_until(lambda: status() == {"delivered"}, timeout=ARRIVES_S)
            assert sent == ["r1", "r1"]
        finally:
            await relay.stop()


async def test_on_sqlite_the_listener_does_nothing_and_the_hub_keeps_polling(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'app.sqlite'}")
    try:
        listener = OutboxListener(store)
        hub = Hub(store, poll_s=0.05, listener=listener)
        assert not listener.active
        listener.start()
        hub.start()
        try:
            assert not listener.connected
            sub = await hub.subscribe("t1", lambda e: True, 0)
            store.outbox.append(event_id="s1", topic="job.state", tenant_id="t1", payload={})
            assert (await _next(sub)).event_id == "s1"
        finally:
            await hub.stop()
            await listener.stop()
    finally:
        store.close()
