"""`to_records` builds the records `to_record` builds, whatever the query's columns: in
the table's order or another, some left out (positionally where the row holds the
record's first fields, by keyword otherwise), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import time

import sqlalchemy as sa

from portwright.store import JobRecord, Store
from portwright.store._jobs import NewJob
from portwright.store._rows import to_record, to_records
from portwright.store._schema import jobs


@dataclasses.dataclass(frozen=True, slots=True)
class _Head:
    id: str
    state: str
    seq: int = 0
    notes: dict[str, object] | None = None


@dataclasses.dataclass(frozen=True)
class _Later:
    id: str
    state: str = ""
    seq: int = dataclasses.field(default=0, kw_only=True)


def test_to_records_builds_what_to_record_builds_for_any_column_order(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("rows").id
        new = [
            NewJob(
                job_id=f"job_{i:03d}",
                tenant_id=tenant,
                adapter="scrape",
                adapter_version="1",
                portal="web",
                state="QUEUED",
                status="queued",
                input={"url": f"http://x.test/{i}", "n": [i, None]},
                lock_key=None,
                priority=i,
                actor="api",
                notes={"chunk": "c"} if i % 2 else None,
            )
            for i in range(5)
        ]
        with store.engine.begin() as conn:
            store.jobs.insert_many(conn, new)
        c = jobs.c
        shapes: list[tuple[type, list[sa.ColumnElement[object]]]] = [
            (JobRecord, list(jobs.c)),  # the table's order (not the record's)
            (JobRecord, list(reversed(jobs.c))),
            (_Head, [c.seq, c.id, c.state]),  # a trailing field left out: positional
            (_Head, [c.notes, c.id, c.state]),  # a middle one: by keyword
            (_Head, [c.id, c.state, c.seq, c.notes, c.status]),  # a column not a field
            (_Later, [c.seq, c.state, c.id]),  # a keyword-only field
        ]
        with store.engine.connect() as conn:
            for cls, columns in shapes:
                query = sa.select(*columns).order_by(c.id)
                rows = conn.execute(query).all()
                records = to_records(cls, conn.execute(query))
                assert records == [to_record(cls, row) for row in rows]
                assert [r.id for r in records] == [n.job_id for n in new]
                for record, row in zip(records, rows, strict=True):
                    mapping = row._mapping
                    for field in dataclasses.fields(cls):
                        if field.name in mapping:
                            assert getattr(record, field.name) == mapping[field.name]
                        else:
                            assert getattr(record, field.name) == field.default
            jobs_read = to_records(JobRecord, conn.execute(sa.select(jobs).order_by(c.id)))
        assert [j.input for j in jobs_read] == [n.input for n in new]
        assert [j.notes for j in jobs_read] == [n.notes for n in new]
        assert [j.priority for j in jobs_read] == list(range(5))
        assert all(j.created_at <= time.time() for j in jobs_read)
    finally:
        store.close()
