"""The store calls of a chunk's sub-chunk (`ChunkRunner._read` and `_record`): the jobs read
and locked with their ids as one bound value, and the rows `write_events_many` writes for
planned events, compared with the plain path (`apply_batch`, one job at a time)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portwright.adapters.scrape import ScrapeAdapter
from portwright.orchestrator._tx import apply_batch, plan_changes
from portwright.store import Store
from portwright.store._schema import job_events, jobs


def _insert(store: Store, tenant: str, job_id: str, url: str) -> None:
    machine = ScrapeAdapter.machine
    store.jobs.insert(
        job_id=job_id,
        tenant_id=tenant,
        adapter="scrape",
        adapter_version="1",
        portal="scrape",
        state=machine.initial,
        status=machine.status_of(machine.initial),
        input={"url": url, "engine": "auto"},
        lock_key=None,
        priority=0,
        actor="test",
    )


def test_the_jobs_are_read_and_locked_with_their_ids_as_one_bound_value(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme").id
        for name in ("job_a", "job_b", "job_c"):
            _insert(store, tenant, name, f"https://example.test/{name}")
        params: list[Any] = []

        def seen(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
            if "FROM jobs" in statement:
                params.append(parameters)

        sa.event.listen(store.engine, "before_cursor_execute", seen)
        asked = ["job_c", "job_a", "job_missing", "job_b", "job_a"]
        with store.engine.connect() as conn:
            read = store.jobs.read_many(conn, asked)
        with store.engine.begin() as conn:
            locked = store.jobs.lock_many(conn, asked)
        sa.event.remove(store.engine, "before_cursor_execute", seen)

        # in the order asked, each found id once per time asked; the missing one left out
        assert [job.id for job in read] == ["job_c", "job_a", "job_b", "job_a"]
        assert sorted(locked) == ["job_a", "job_b", "job_c"]
        assert locked["job_b"].input == {"url": "https://example.test/job_b", "engine": "auto"}
        assert read[0] == store.jobs.get("job_c")
        # one parameter each, whatever the number of ids (not one placeholder per id)
        assert len(params) == 2
        assert all(len(p) == 1 for p in params), params
        with store.engine.connect() as conn:
            assert store.jobs.read_many(conn, []) == []
            assert store.jobs.lock_many(conn, []) == {}
    finally:
        store.close()


def _rows(store: Store, job_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The job's row and its events, without what differs between two jobs (id, times)."""
    with store.engine.connect() as conn:
        row = dict(conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()._mapping)
        events = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(job_events).where(job_events.c.job_id == job_id).order_by("seq")
            )
        ]
    assert row["finished_at"] is not None
    for key in ("id", "created_at", "updated_at", "finished_at"):
        row.pop(key)
    for event in events:
        for key in ("id", "job_id", "created_at"):
            event.pop(key)
    return row, events


def test_write_events_many_writes_the_rows_apply_batch_writes(db_url: str) -> None:
    """A sub-chunk's item as `_record` writes it (planned events passed with their
    `status`, for several jobs at once) reads the same as the plain path's."""
    store = Store.open(db_url)
    machine = ScrapeAdapter.machine
    try:
        tenant = store.tenants.ensure("acme").id
        url = "https://example.test/page"
        for name in ("job_plain", "job_many", "job_many2"):
            _insert(store, tenant, name, url)
        changes = [
            {"to_state": "QUEUED", "actor": "adapter:scrape", "reason": "", "meta": {}},
            {
                "to_state": "FETCHING",
                "actor": "adapter:scrape",
                "reason": "go",
                "meta": {"n": 1, "why": ["a"]},
                "updates": None,
                "kind": "transition",
            },
            {
                "to_state": machine.success,
                "actor": "engine",
                "reason": "completed",
                "meta": {},
                "updates": {"output": {"url": url, "text": "é", "items": [1, None]}},
                "kind": "transition",
            },
        ]
        with store.engine.begin() as conn:
            result = apply_batch(conn, store, lambda _name: machine, "job_plain", changes)
        assert result["state"] == machine.success
        with store.engine.begin() as conn:
            locked = store.jobs.lock_many(conn, ["job_many", "job_many2"])
            writes = []
            for job in locked.values():
                events, values, illegal = plan_changes(job, machine, changes)
                assert illegal is None
                assert all("status" in event for event in events)
                writes.append((job, events, values))
            store.jobs.write_events_many(conn, writes)

        plain = _rows(store, "job_plain")
        assert plain[0]["state"] == machine.success
        assert [e["seq"] for e in plain[1]] == [1, 2, 3, 4]
        assert _rows(store, "job_many") == plain
        assert _rows(store, "job_many2") == plain
    finally:
        store.close()
