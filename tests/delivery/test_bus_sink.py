"""The NATS JetStream sink: the outbox reaches the stream once per event, across a restart.

Needs the local NATS server with JetStream (127.0.0.1:4222, or PORTWRIGHT_TEST_NATS).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import nats
import pytest
import sqlalchemy as sa

from portwright.delivery import NatsSink, Relay, sinks_from
from portwright.settings import Settings
from portwright.store import Store
from portwright.store._schema import outbox, outbox_pending

NATS_URL = os.environ.get("PORTWRIGHT_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture
async def stream_name() -> AsyncIterator[str]:
    """A stream of this test's own, deleted afterwards."""
    name = f"PWTEST_{secrets.token_hex(4).upper()}"
    yield name
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_stream_gets_each_event_once_across_a_relay_restart(
    settings: Settings, stream_name: str
) -> None:
    """Events published by a relay that died before marking them published are sent again
    by the next relay, and JetStream keeps one message per event (Nats-Msg-Id = event id)."""
    assert sinks_from(settings) == [], "off by default"
    prefix = stream_name.lower()
    on = settings.model_copy(update={"nats_url": NATS_URL, "nats_stream": stream_name})
    [configured] = sinks_from(on)
    assert isinstance(configured, NatsSink)
    assert NATS_URL not in repr(configured), "the URL (it may carry credentials) stays out"
    store = Store.open(settings.app_database_url)
    try:
        tenant = store.tenants.ensure("bus")
        ids = [f"evt-bus-{n}" for n in range(12)]
        for event_id in ids[:8]:
            store.outbox.append(event_id=event_id, topic="job.updated", tenant_id=tenant.id,
                                payload={"id": event_id})  # fmt: skip
        first = Relay(store, sinks=[NatsSink(NATS_URL, stream=stream_name, subject_prefix=prefix)])
        await first.run_until_idle()
        await first.stop()
        for event_id in ids[8:]:
            store.outbox.append(event_id=event_id, topic="order.created", tenant_id=tenant.id,
                                payload={"id": event_id})  # fmt: skip
        # The first relay's crash window: sent to the bus, never marked published.
        with store.engine.begin() as conn:  # every event back in the relay's queue
            queued = sa.exists().where(outbox_pending.c.id == outbox.c.id)
            again = sa.select(outbox.c.id).where(~queued)
            conn.execute(outbox_pending.insert().from_select(["id"], again))
        second = Relay(store, sinks=[NatsSink(NATS_URL, stream=stream_name, subject_prefix=prefix)])
        await second.run_until_idle()
        await second.stop()
        assert store.outbox.pending_count() == 0
    finally:
        store.close()

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream_name)
        assert info.state.messages == len(ids), "twenty sends, one message per event"
        sub = await js.pull_subscribe(f"{prefix}.>", stream=stream_name)
        messages = await sub.fetch(len(ids), timeout=30)
        got = [m.headers["Nats-Msg-Id"] for m in messages if m.headers]
        subjects = {m.subject for m in messages}
    finally:
        await nc.close()
    assert sorted(got) == sorted(ids)
    assert subjects == {f"{prefix}.job.updated", f"{prefix}.order.created"}
