"""The realtime hub's resume path against a real store: no gap, no endless replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

from portwright.delivery import Hub
from portwright.store import OutboxRecord, Store


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
