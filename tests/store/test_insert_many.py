"""`JobRepository.insert_many` and `UsageRepository.record_many`, a batch's acceptance, on
SQLite and PostgreSQL: the records returned are the rows stored (built from what was
written, only PostgreSQL's JSON columns read back), each job has its first event and usage
record."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa

from portwright._ids import new_ids
from portwright.store import JobIdTakenError, NewJob, Store
from portwright.store._schema import job_events, jobs, usage_records


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


def _varied(n: int) -> dict[str, Any]:
    """An input that jsonb reorders at every level: keys of many lengths, unicode keys
    (whose UTF-8 length is not their length), None values, nested lists of objects."""
    return {
        "url": f"http://example.test/p/{n}?q=é",
        "zz": None,
        "a": {"longest key here": [1, {"bb": 2, "a": 3}], "é": "ü", "e": "x", "ee": 0.25},
        "\U0001f600": "emoji key",
        "ééé": {"": "empty key", "x": {}},
        "n": n,
        "big": 2**70,
        "neg": -3,
        "flag": n % 2 == 0,
        "text": 'quotes " and \\ and \u2028 and %s and ünïcødé',
        "list": [None, True, "s", 1.5, 1e-7, [], {}],
        "pad": "x" * (50_000 if n == 1 else 10),  # a large input
    }


def _written_rows(conn: sa.Connection, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Each job's and its event's stored columns (JSON as the database prints it), by id,
    less what differs between two writes (the id, the times)."""
    text = sa.cast if conn.dialect.name == "postgresql" else sa.type_coerce
    job = [c for c in jobs.c if c.name not in ("id", "created_at", "updated_at")]
    event = [c for c in job_events.c if c.name not in ("id", "job_id", "created_at")]
    found: dict[str, tuple[Any, ...]] = {}
    for row in conn.execute(
        sa.select(
            jobs.c.id,
            *(text(c, sa.Text) if isinstance(c.type, sa.JSON) else c for c in job),
            *(text(c, sa.Text) if isinstance(c.type, sa.JSON) else c for c in event),
        )
        .join(job_events, job_events.c.job_id == jobs.c.id)
        .where(jobs.c.id.in_(ids))
    ):
        found[row[0]] = tuple(row[1:])
    return found


def test_the_one_statement_write_stores_what_the_read_back_write_stores(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL writes a batch's jobs and events in one statement (`insert_linked`) and
    works out how jsonb returns their JSON (`as_jsonb_returns`) instead of reading it back:
    the rows stored, and the records returned, key order included, are those of the write
    that reads back (`insert_rows`, forced here), on both databases."""
    import json

    from portwright.store import _jobs as jobs_module

    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme")
        shaped = [
            dataclasses.replace(
                _new("", tenant.id, n),
                input=_varied(n),
                notes=None if n % 2 else {"chunk": "c_1", "b": [{"yy": 1, "x": None}]},
            )
            for n in range(6)
        ]
        ours, theirs = new_ids("job", 6), new_ids("job", 6)
        with store.engine.begin() as conn:
            mine, _ = store.jobs.insert_many(
                conn, [dataclasses.replace(s, job_id=i) for s, i in zip(shaped, ours, strict=True)]
            )

        def unsure(value: Any) -> Any:
            raise LookupError("forced")

        monkeypatch.setattr(jobs_module, "as_jsonb_returns", unsure)
        with store.engine.begin() as conn:
            ref, _ = store.jobs.insert_many(
                conn,
                [dataclasses.replace(s, job_id=i) for s, i in zip(shaped, theirs, strict=True)],
            )
        with store.engine.connect() as conn:
            stored_mine, stored_ref = _written_rows(conn, ours), _written_rows(conn, theirs)
        assert [stored_mine[i] for i in ours] == [stored_ref[i] for i in theirs]
        read = store.jobs.get_many(ours)
        for record, back, other in zip(mine, read, ref, strict=True):
            assert record == back  # every field as stored
            for column in ("input", "notes"):  # and the JSON in the stored key order
                shown = json.dumps(getattr(record, column))
                assert shown == json.dumps(getattr(back, column))
                assert shown == json.dumps(getattr(other, column))
    finally:
        store.close()


def test_values_whose_stored_form_is_unsure_are_read_back(db_url: str) -> None:
    """A float that jsonb returns as an int (1e16), -0.0: the records show what is stored."""
    import json

    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme")
        ids = new_ids("job", 2)
        new = [
            dataclasses.replace(_new(i, tenant.id, n), input={"zz": 1e16, "a": -0.0, "u": [1e16]})
            for n, i in enumerate(ids)
        ]
        with store.engine.begin() as conn:
            records, _ = store.jobs.insert_many(conn, new, new_only=True)
        read = store.jobs.get_many(ids)
        assert [json.dumps(r.input) for r in records] == [json.dumps(r.input) for r in read]
    finally:
        store.close()


@pytest.mark.parametrize("unsure", [False, True], ids=["certain", "read-back"])
def test_on_records_gets_the_records_returned_before_they_are_written_when_certain(
    db_url: str, unsure: bool
) -> None:
    """`on_records` is called once with the very records `insert_many` returns (and the
    rows show what is stored); where their stored form is certain (SQLite, PostgreSQL's
    one statement) before any job row is written, else after (PostgreSQL's read-back)."""
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme")
        ids = new_ids("job", 3)
        new = [_new(job_id, tenant.id, n) for n, job_id in enumerate(ids)]
        if unsure:
            new = [dataclasses.replace(n, input={"zz": 1e16}) for n in new]
        seen: list[tuple[list[Any], int]] = []

        with store.engine.begin() as conn:

            def on_records(records: list[Any]) -> None:
                count = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one()
                seen.append((records, count))

            records, _ = store.jobs.insert_many(conn, new, new_only=True, on_records=on_records)
        assert len(seen) == 1
        assert seen[0][0] is records
        assert records == store.jobs.get_many(ids)
        before = not (unsure and store.engine.dialect.name == "postgresql")
        assert seen[0][1] == (0 if before else 3)
    finally:
        store.close()


def test_a_failure_midway_leaves_nothing_written(db_url: str) -> None:
    """The jobs and their events are written together or not at all: a batch whose last
    job names a tenant that does not exist (its foreign key fails), or whose ids are
    taken, writes no job and no event."""
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme")
        ids = new_ids("job", 4)
        new = [_new(job_id, tenant.id, n) for n, job_id in enumerate(ids)]
        new[-1] = dataclasses.replace(new[-1], tenant_id="no-such-tenant")
        new = [dataclasses.replace(n, input=_varied(i)) for i, n in enumerate(new)]
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            store.jobs.insert_many(conn, new, new_only=True)
        with store.engine.connect() as conn:
            for table in (jobs, job_events):
                count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                assert count == 0, table.name
        with store.engine.begin() as conn:  # the same ids, the tenant fixed: accepted
            fixed = [dataclasses.replace(n, tenant_id=tenant.id) for n in new]
            records, created = store.jobs.insert_many(conn, fixed, new_only=True)
        assert created == set(ids)
        assert [r.id for r in records] == ids
        with pytest.raises(JobIdTakenError), store.engine.begin() as conn:
            store.jobs.insert_many(conn, fixed[2:], new_only=True)
        with store.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(job_events)).scalar()
        assert count == 4
    finally:
        store.close()


def test_insert_linked_writes_every_part_in_order_in_one_statement(db_url: str) -> None:
    """`insert_linked`: each part's rows in the order given (ids drawn in that order), a
    part referring to an earlier one's rows (a foreign key), one statement on
    PostgreSQL; a part that fails writes nothing of any part."""
    from portwright.store._bulk import insert_linked

    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme").id
        ids = sorted(new_ids("job", 30), reverse=True)  # not in the primary key's order
        job_rows = [
            {
                "id": job_id,
                "tenant_id": tenant,
                "adapter": "a",
                "adapter_version": "1",
                "portal": "p",
                "state": "S",
                "status": "queued",
                "input": _varied(n),
                "notes": None,
                "seq": 1,
                "created_at": 1.5,
                "updated_at": 1.5,
            }
            for n, job_id in enumerate(ids)
        ]
        event_rows = [
            {
                "job_id": job_id,
                "tenant_id": tenant,
                "seq": 1,
                "kind": "transition",
                "actor": "t",
                "to_state": "S",
                "reason": "",
                "meta": {"n": n},
                "created_at": 1.5,
            }
            for n, job_id in enumerate(ids)
        ]
        statements: list[str] = []
        sa.event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        with store.engine.begin() as conn:
            insert_linked(conn, [(jobs, job_rows), (job_events, event_rows)])
        if store.engine.dialect.name == "postgresql":
            assert len([s for s in statements if "INSERT" in s]) == 1
        with store.engine.connect() as conn:
            order = conn.execute(sa.select(job_events.c.job_id).order_by(job_events.c.id))
            assert [row[0] for row in order] == ids
            notes = conn.execute(sa.select(jobs.c.notes).where(jobs.c.id == ids[0])).scalar()
            assert notes is None
        broken = [{**row, "job_id": "job_missing"} for row in event_rows[:1]]
        more = [{**row, "id": f"{row['id']}x"} for row in job_rows]
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            insert_linked(conn, [(jobs, more), (job_events, broken)])
        with store.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar()
        assert count == len(ids)
    finally:
        store.close()
