"""`JobRepository.insert_many` and `UsageRepository.record_many`, a batch's acceptance, on
SQLite and PostgreSQL: the records returned are the rows stored (built from what was
written, only PostgreSQL's JSON columns read back), each job has its first event and usage
record."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portwright._ids import new_ids
from portwright.store import JobIdTakenError, NewJob, Store
from portwright.store._schema import job_events, usage_records


def _new(job_id: str, tenant_id: str, n: int) -> NewJob:
    return NewJob(
        job_id=job_id,
        tenant_id=tenant_id,
        adapter="scrape",
        adapter_version="1.0.0",
        portal="web",
        state="QUEUED",
        status="queued",
        input={"url": f"http://example.test/p/{n}", "extract": {"t": {"css": "h1"}}, "n": 1.5},
        lock_key="acct-1" if n % 2 else None,
        priority=n % 3,
        actor="key:k1",
        parent_id="job_parent" if n == 1 else None,
        item_key=f"item-{n}" if n == 1 else None,
        trace_parent="00-abc-def-01" if n == 2 else None,
        notes={"chunk": "c_1"} if n % 2 else None,
    )


def test_the_records_returned_are_the_rows_stored(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme")
        ids = new_ids("job", 5)
        new = [_new(job_id, tenant.id, n) for n, job_id in enumerate(ids)]
        with store.engine.begin() as conn:
            records, created = store.jobs.insert_many(conn, new[:3], new_only=True)
            store.usage.record_many(
                conn,
                tenant_id=tenant.id,
                period="2026-12",
                kind="scrape",
                tier="pending",
                api_key_id="k1",
                charges=[(r.id, 2) for r in records],
            )
        assert [r.id for r in records] == ids[:3]
        assert created == set(ids[:3])
        assert records == store.jobs.get_many(ids[:3])  # every field, as stored
        assert [r.input for r in records] == [n.input for n in new[:3]]
        assert records[1].notes == {"chunk": "c_1"}
        assert records[0].notes is None
        for record in records:
            shown = (record.seq, record.attempts, record.paused, record.output)
            assert shown == (1, 0, False, None)
            events = store.jobs.events(record.id)
            assert [(e.seq, e.to_state, e.reason, e.actor) for e in events] == [
                (1, "QUEUED", "submitted", "key:k1")
            ]
        with store.engine.connect() as conn:
            usage = conn.execute(
                sa.select(usage_records.c.job_id, usage_records.c.credits, usage_records.c.tier)
            ).all()
        assert sorted(usage) == sorted((job_id, 2, "pending") for job_id in ids[:3])

        # again with two more: the first three are there (read, not written again)
        with store.engine.begin() as conn:
            again, created = store.jobs.insert_many(conn, new)
        assert created == set(ids[3:])
        assert again[:3] == records
        assert again == store.jobs.get_many(ids)
        with store.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(job_events)).scalar()
        assert count == 5
        with pytest.raises(JobIdTakenError), store.engine.begin() as conn:
            store.jobs.insert_many(conn, new[:1], new_only=True)
    finally:
        store.close()
