"""A batch of shop webhooks applied in one transaction: rows claimed and orders locked
together, a row whose lease was lost skipped, an order changed twice in a batch seen as
changed."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
import sqlalchemy as sa

from portwright.apps.dispatch import (
    ORDER_ASSIGNED,
    ORDER_CREATED,
    Dispatcher,
    DispatchRepository,
    order_key,
)
from portwright.apps.dispatch import _service as dispatch_service
from portwright.sandbox.shops import BETA, Order
from portwright.store import FinishedNote, NewInboxEvent, Store
from portwright.store._schema import webhook_inbox


def _event(tenant_id: str, kind: str, order_id: str, seq: int) -> NewInboxEvent:
    order = Order(order_id, 1000 + seq, "Ada Byron", "12 Quay St", [("PZ", "Pizza", 1, 1150)],
                  "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")  # fmt: skip
    body = BETA.event(7, seq, kind, order).body  # type: ignore[arg-type]
    return NewInboxEvent(
        source="shop-beta",
        external_id="beta",
        event_id=f"evt_{seq}",
        checksum=hashlib.sha256(body).hexdigest(),
        payload=body,
        event_type=json.loads(body)["type"],
        tenant_id=tenant_id,
    )


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_a_batch_skips_a_lost_lease_and_sees_its_own_changes(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme").id
        with store.engine.begin() as conn:
            DispatchRepository(store.engine).upsert_driver(
                conn, tenant, "d1", name="d1", available=True
            )
        store.inbox.add_many(
            [
                _event(tenant, "created", "ord_a", 1),
                _event(tenant, "created", "ord_b", 2),  # its lease is taken away below
                _event(tenant, "created", "ord_c", 3),
                _event(tenant, "cancelled", "ord_c", 4),  # same batch as ord_c's creation
            ]
        )
        claimed = sorted(store.inbox.claim(worker="p1", limit=10, lease_s=60), key=lambda e: e.id)
        assert len(claimed) == 4
        stolen = next(e for e in claimed if b"ord_b" in e.payload)
        with store.engine.begin() as conn:  # another processor re-leased it meanwhile
            conn.execute(
                webhook_inbox.update()
                .where(webhook_inbox.c.id == stolen.id)
                .values(leased_by="p2", lease_until=stolen.lease_until + 60)  # type: ignore[operator]
            )
        claimed.sort(key=lambda e: e.event_id)  # the order they were sent in
        dispatcher = Dispatcher(store)
        notes = await asyncio.gather(
            *(dispatcher.ingest(e) for e in claimed), return_exceptions=True
        )
        by_order = dict(zip(("ord_a", "ord_b", "ord_c", "ord_c:x"), notes, strict=True))
        assert by_order["ord_a"] == "order ord_a assigned to d1"
        assert isinstance(by_order["ord_b"], RuntimeError)
        assert "lease lost" in str(by_order["ord_b"])
        assert by_order["ord_c:x"] == "order ord_c: cancelled by the platform"

        def assignment(order_id: str) -> tuple[str | None, str, int] | None:
            record = DispatchRepository(store.engine).get(order_key(tenant, "shop-beta", order_id))
            return None if record is None else (record.driver_id, record.status, record.version)

        assert assignment("ord_a") == ("d1", "assigned", 1)
        assert assignment("ord_b") is None
        assert assignment("ord_c") == ("d1", "cancelled", 2)
        rows = {e.id: store.inbox.get(e.id) for e in claimed}
        assert rows[stolen.id].status == "processing"
        assert rows[stolen.id].leased_by == "p2"
        assert all(row.status == "done" for i, row in rows.items() if i != stolen.id)
        # Each applied row carries its own note, written in the batch's transaction, so the
        # processor leaves it alone (FinishedNote); the row whose lease was lost gets none.
        for event, note in zip(claimed, notes, strict=True):
            if event.id != stolen.id:
                assert isinstance(note, FinishedNote)
                assert rows[event.id].result == note
        assert rows[stolen.id].result is None
        topics = [(e.topic, e.payload["order_id"]) for e in store.outbox.since(0, limit=100)]
        assert (ORDER_CREATED, "ord_b") not in topics
        assert topics.count((ORDER_ASSIGNED, "ord_a")) == 1
        with store.engine.connect() as conn:
            statuses = conn.execute(sa.select(webhook_inbox.c.status)).scalars().all()
        assert sorted(statuses) == ["done", "done", "done", "processing"]
    finally:
        store.close()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_a_batch_reading_only_the_least_loaded_drivers_assigns_as_reading_all(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 drivers and batches of 6 to 24 changes, so a batch reads only the 8 to 26 least
    loaded: orders created; orders of the drivers it did not read fulfilled or cancelled
    (they become the least loaded, and must be found); drivers going off duty between
    batches. Every assignment equals the one a run that reads every driver in every batch
    makes — the same drivers, statuses and versions."""

    async def run(*, read_all: bool) -> dict[str, tuple[str | None, str, int]]:
        store = Store.open(db_url)
        try:
            tenant = store.tenants.ensure("reads-all" if read_all else "reads-fewer").id
            dispatcher = Dispatcher(store)
            repo = DispatchRepository(store.engine)
            for n in range(60):
                await dispatcher.put_driver(tenant, f"d{n:02}", name=f"driver {n}")
            if read_all:
                monkeypatch.setattr(dispatch_service, "_SPARE_DRIVERS", 10_000)
            seq = 1000 if read_all else 0  # one inbox: the event ids differ

            async def batch(changes: list[tuple[str, str]]) -> None:
                nonlocal seq
                events = []
                for kind, order_id in changes:
                    seq += 1
                    events.append(_event(tenant, kind, order_id, seq))
                store.inbox.add_many(events)
                claimed = store.inbox.claim(worker="p1", limit=100, lease_s=60)
                claimed.sort(key=lambda e: int(e.event_id.split("_")[1]))
                await asyncio.gather(*(dispatcher.ingest(e) for e in claimed))

            def held_by(drivers: range) -> list[str]:
                mine = {f"d{n:02}" for n in drivers}
                held = [r.order_id for r in repo.all(tenant) if r.driver_id in mine]
                return sorted(r for r in held if r)

            for first in range(0, 130, 26):  # 130 orders: two or three a driver
                await batch([("created", f"o{n:03}") for n in range(first, first + 26)])
            for n in (3, 7, 11):
                await dispatcher.put_driver(tenant, f"d{n:02}", available=False)
            ends = held_by(range(50, 60))
            await batch([("fulfilled", o) for o in ends[:3]]
                        + [("created", f"p{n:03}") for n in range(3)])  # fmt: skip
            await batch([("cancelled", o) for o in ends[3:6]]
                        + [("created", f"p{n:03}") for n in range(3, 9)])  # fmt: skip
            await batch([("fulfilled", o) for o in held_by(range(3, 12, 4))]
                        + [("created", f"p{n:03}") for n in range(9, 30)])  # fmt: skip
            return {r.order_id: (r.driver_id, r.status, r.version) for r in repo.all(tenant)}
        finally:
            monkeypatch.undo()
            store.close()

    fewer = await run(read_all=False)
    every = await run(read_all=True)
    assert len(fewer) == 160
    assert fewer == every
    assert len({driver for driver, _, _ in fewer.values()}) == 57  # all but the 3 off duty
