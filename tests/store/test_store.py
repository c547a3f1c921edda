"""The store on SQLite and PostgreSQL: migrations, pragmas, breakers, worker claims."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portwright.store import (
    BreakerPolicy,
    JobRecord,
    StaleStateError,
    Store,
    current_revision,
    head_revision,
    metadata_of,
)


def test_migrations_create_exactly_the_declared_schema(db_url: str) -> None:
    """Running the migrations yields the tables the code declares, with nothing left to diff."""
    store = Store.open(db_url)
    try:
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata_of())
        assert diff == []
        Store.open(db_url).close()  # migrating again is a no-op
    finally:
        store.close()


def test_sqlite_runs_in_wal_mode_with_deliberate_pragmas(tmp_path: object) -> None:
    """SQLite connections use WAL, NORMAL sync, a busy timeout and foreign keys."""
    store = Store.open(f"sqlite:///{tmp_path}/p.sqlite")
    try:
        with store.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 1,
            "busy_timeout": 30000,
            "foreign_keys": 1,
        }
    finally:
        store.close()


def test_breaker_opens_on_failures_lets_one_probe_in_and_closes_on_success(db_url: str) -> None:
    """Enough failures open the breaker; after open_s one caller probes; success closes it."""
    store = Store.open(db_url)
    policy = BreakerPolicy(window_s=60, min_calls=4, failure_rate=0.5, open_s=0.0, probe_lease_s=30)
    try:
        for ok in (True, False, False, False):
            state = store.portals.record_outcome("portal:x", ok=ok, policy=policy)
        assert state.state == "open"
        assert store.portals.allow("portal:x", policy=policy) == (True, None), "first probe"
        allowed, retry_at = store.portals.allow("portal:x", policy=policy)
        assert not allowed
        assert retry_at is not None, "a second caller waits for the probe"
        assert store.portals.record_outcome("portal:x", ok=True, policy=policy).state == "closed"
        assert store.portals.allow("portal:x", policy=policy) == (True, None)
    finally:
        store.close()


def test_a_silent_worker_is_claimed_dead_by_exactly_one_live_worker(db_url: str) -> None:
    """Of several workers racing to take over a dead one, exactly one claim succeeds."""
    store = Store.open(db_url)
    try:
        store.workers.heartbeat("dead-one")
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE workers SET heartbeat_at = heartbeat_at - 100"))
        cutoff = store.workers.all()[0].heartbeat_at + 50
        claims = [store.workers.claim_dead("dead-one", by=f"w{i}", cutoff=cutoff) for i in range(5)]
        assert claims.count(True) == 1
        [dead] = store.workers.all()
        assert (dead.status, dead.taken_over_by) == ("dead", "w0")
    finally:
        store.close()


def test_a_jobs_events_and_outbox_rows_are_written_only_if_its_seq_still_matches(
    db_url: str,
) -> None:
    """`write_events` writes the job row, its events and their outbox rows together (one
    statement on PostgreSQL); with a seq the job has moved past it writes none of them and
    raises StaleStateError."""
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme").id
        job, _ = store.jobs.insert(
            job_id="job_w", tenant_id=tenant, adapter="scrape", adapter_version="1",
            portal="scrape", state="INIT", status="queued", input={}, lock_key=None,
            priority=0, actor="test",
        )  # fmt: skip

        def write(seen: JobRecord, to_state: str) -> JobRecord:
            event = {"kind": "transition", "actor": "engine", "from_state": "INIT",
                     "to_state": to_state, "reason": "r", "meta": {"n": 1}}  # fmt: skip
            row = {"event_id": f"job_w:{to_state}", "topic": "job.running", "tenant_id": tenant,
                   "subject": "job_w", "payload": {"to": to_state}}  # fmt: skip
            with store.engine.begin() as conn:
                return store.jobs.write_events(
                    conn,
                    seen,
                    [event],
                    values={"state": to_state, "status": "running", "output": {"k": [1, 2]}},
                    outbox_rows=[row],
                )

        written = write(job, "WORKING")
        assert store.jobs.get("job_w") == written
        assert (written.seq, written.state, written.output) == (2, "WORKING", {"k": [1, 2]})
        with pytest.raises(StaleStateError):
            write(job, "OTHER")  # seq 1: the job is at 2 now
        assert store.jobs.get("job_w") == written
        events = store.jobs.events("job_w")
        assert [(e.seq, e.to_state, e.meta) for e in events] == [
            (1, "INIT", {}),
            (2, "WORKING", {"n": 1}),
        ]
        assert [(o.event_id, o.payload) for o in store.outbox.peek_unpublished(10)] == [
            ("job_w:WORKING", {"to": "WORKING"})
        ]
    finally:
        store.close()


def test_a_job_inserted_twice_under_one_id_keeps_the_first_in_two_statements(
    db_url: str,
) -> None:
    """`jobs.insert` writes the job and its first event with one INSERT … ON CONFLICT and
    one event INSERT (no SELECT first; on PostgreSQL both in one statement); the same id
    again returns the first job, writes nothing, and the first job keeps its input and its
    single event."""
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme").id
        fields = {
            "tenant_id": tenant,
            "adapter": "scrape",
            "adapter_version": "1",
            "portal": "scrape",
            "state": "INIT",
            "status": "queued",
            "lock_key": None,
            "priority": 0,
            "actor": "test",
        }
        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            statements.append(statement.split(maxsplit=1)[0].upper())

        sa.event.listen(store.engine, "before_cursor_execute", count)
        first, created = store.jobs.insert(job_id="job_same", input={"n": 1}, **fields)
        sa.event.remove(store.engine, "before_cursor_execute", count)
        assert created
        assert first.input == {"n": 1}
        one = store.engine.dialect.name == "postgresql"
        assert statements == (["WITH"] if one else ["INSERT", "INSERT"]), statements

        again, created = store.jobs.insert(job_id="job_same", input={"n": 2}, **fields)
        assert not created
        assert again.id == "job_same"
        assert again.input == {"n": 1}
        assert store.jobs.get("job_same").input == {"n": 1}
        assert store.jobs.get("job_same") == first  # the record returned is the row
        [event] = store.jobs.events("job_same")
        assert (event.seq, event.kind, event.actor, event.from_state, event.to_state) == (
            1,
            "transition",
            "test",
            None,
            "INIT",
        )
        assert (event.reason, event.meta) == ("submitted", {})
    finally:
        store.close()
