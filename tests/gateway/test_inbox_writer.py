"""The inbox's group commit, on a real database: batches, duplicates, and a bad event alone."""

from __future__ import annotations

import asyncio

from portwright.gateway.webhooks import InboxWriter
from portwright.store import NewInboxEvent, Store


def _event(n: int, *, payload: bytes | None = b"{}") -> NewInboxEvent:
    return NewInboxEvent(
        source="shop-beta",
        external_id="",
        event_id=f"evt_{n}",
        checksum=f"sum_{n}",
        payload=payload,  # type: ignore[arg-type]  # None: a row the database refuses
        event_type="order.created",
        tenant_id=None,
    )


async def test_concurrent_adds_share_transactions_and_dedupe(db_url: str) -> None:
    """Two hundred adds at once (each event twice) commit in far fewer transactions than
    adds, and each event has one row: the first add created it, the second is told so."""
    store = Store.open(db_url)
    batches: list[int] = []
    add_many = store.inbox.add_many

    def counting(events: list[NewInboxEvent]) -> object:
        batches.append(len(events))
        return add_many(events)

    store.inbox.add_many = counting  # type: ignore[method-assign,assignment]
    try:
        writer = InboxWriter(store)
        results = await asyncio.gather(*(writer.add(_event(n % 100)) for n in range(200)))
        assert sum(batches) == 200
        assert len(batches) < 20, batches
        for n in range(100):
            (first, created), (again, dup_created) = results[n], results[n + 100]
            assert created
            assert not dup_created
            assert again.id == first.id
        assert store.inbox.counts() == {"pending": 100}
    finally:
        store.close()


async def test_a_refused_event_fails_alone(db_url: str) -> None:
    """An event the database refuses (a NULL payload) fails its own add; the others in the
    same batch are persisted."""
    store = Store.open(db_url)
    try:
        writer = InboxWriter(store)
        outcomes = await asyncio.gather(
            *(writer.add(_event(n, payload=None if n == 3 else b"{}")) for n in range(8)),
            return_exceptions=True,
        )
        failed = [n for n, o in enumerate(outcomes) if isinstance(o, BaseException)]
        assert failed == [3]
        assert store.inbox.counts() == {"pending": 7}
    finally:
        store.close()
