"""The relay's publish half against a real store: events claimed and marked published in
one statement, shared between several relays, each event claimed by one of them."""

from __future__ import annotations

import asyncio

import pytest

from portwright.delivery import Relay
from portwright.store import OutboxHead, Store


def _recording(store: Store, into: list[int]) -> None:
    claim = store.outbox.claim_unpublished

    def recorded(conn: object, limit: int) -> list[OutboxHead]:
        heads = claim(conn, limit)  # type: ignore[arg-type]
        into.extend(h.id for h in heads)
        return heads

    store.outbox.claim_unpublished = recorded  # type: ignore[method-assign]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_two_relays_publishing_while_events_arrive_claim_each_event_once(
    db_url: str,
) -> None:
    """Two relays (two processes' engines) publish in small rounds while events are being
    written: every event is claimed, by exactly one of them, oldest first within a round,
    and nothing stays pending."""
    first = Store.open(db_url)
    second = Store.open(db_url, run_migrations=False)
    claimed: tuple[list[int], list[int]] = ([], [])
    _recording(first, claimed[0])
    _recording(second, claimed[1])
    relays = [Relay(first, publish_batch=40), Relay(second, publish_batch=40)]
    written: list[int] = []
    done = asyncio.Event()

    def write(n: int) -> None:
        for i in range(n):
            written.append(
                first.outbox.append(
                    event_id=f"e{len(written)}-{i}",
                    topic="job.state",
                    payload={"i": i},
                    tenant_id="t1",
                )
            )

    async def writer() -> None:
        for _ in range(10):
            await asyncio.to_thread(write, 30)
        done.set()

    async def publisher(relay: Relay) -> None:
        while True:
            ended = done.is_set()
            if not await relay.publish_once() and ended:
                return

    try:
        await asyncio.wait_for(
            asyncio.gather(writer(), publisher(relays[0]), publisher(relays[1])), timeout=120
        )
        assert not set(claimed[0]) & set(claimed[1])
        assert sorted(claimed[0] + claimed[1]) == sorted(written)
        assert first.outbox.pending_count() == 0
        assert first.outbox.peek_unpublished(10) == []
    finally:
        for relay in relays:
            await relay.client.aclose()
        second.close()
        first.close()
