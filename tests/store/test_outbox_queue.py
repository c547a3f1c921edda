"""The relay's queue: `outbox_pending`, the ids of the events not yet published (0019),
written with each event and deleted by the relay's claim."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from alembic import command

from portwright.store import Store, create_engine, migrate
from portwright.store._migrate import _config
from portwright.store._outbox import claim_heads_statement
from portwright.store._schema import outbox, outbox_pending

# the outbox as 0018 left it (this code's `outbox` has no `published_at`)
OUTBOX_0018 = sa.table(
    "outbox",
    *(sa.column(c.name, c.type) for c in outbox.c),
    sa.column("published_at", sa.Float),
)


def _system_scope(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":  # every tenant's rows, whatever the role
        conn.exec_driver_sql("SELECT set_config('portwright.scope', 'system', true)")


def _pending_ids(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        query = sa.select(outbox_pending.c.id).order_by(outbox_pending.c.id)
        return list(conn.execute(query).scalars())


def _events(n: int, prefix: str = "e") -> list[dict[str, object]]:
    return [
        {"event_id": f"{prefix}{i}", "topic": "job.state", "payload": {"i": i}, "tenant_id": "t1"}
        for i in range(n)
    ]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_database_with_outbox_rows_upgrades_to_the_pending_table(db_url: str) -> None:
    """A database at 0018 with published and unpublished events upgrades: exactly the
    unpublished ones are queued in `outbox_pending` (counted, claimed oldest first), the
    `published_at` column and its partial index are gone, and an event written the 0018
    way afterwards (a previous release's writer) is queued too; downgrading marks the
    published ones again and leaves the pending ones unpublished."""
    engine = create_engine(db_url)
    try:
        migrate(engine, "0018")
        now = time.time()
        rows = [
            {"event_id": f"e{i}", "tenant_id": "t1", "topic": "job.state", "subject": "",
             "payload": {"i": i}, "created_at": now, "published_at": now if i % 3 else None}
            for i in range(30)
        ]  # fmt: skip
        with engine.begin() as conn:
            _system_scope(conn)
            conn.execute(OUTBOX_0018.insert(), rows)
        migrate(engine)
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("outbox")}
        columns = {c["name"] for c in sa.inspect(engine).get_columns("outbox")}
        assert "ix_outbox_unpublished" not in indexes
        assert "published_at" not in columns
        late = {k: v for k, v in rows[0].items() if k != "published_at"}
        with engine.begin() as conn:  # as a previous release's writer does, after 0019
            _system_scope(conn)
            written = sa.table("outbox", *(sa.column(c.name, c.type) for c in outbox.c))
            conn.execute(written.insert(), late | {"event_id": "late"})
    finally:
        engine.dispose()
    store = Store.open(db_url)
    try:
        assert store.outbox.pending_count() == 11
        with store.engine.begin() as conn:
            _system_scope(conn)
            claimed = store.outbox.claim_unpublished(conn, 4)
        assert [c.event_id for c in claimed] == ["e0", "e3", "e6", "e9"]
        assert store.outbox.pending_count() == 7
        assert [e.event_id for e in store.outbox.peek_unpublished(100)] == [
            "e12", "e15", "e18", "e21", "e24", "e27", "late",
        ]  # fmt: skip
    finally:
        store.close()
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            _system_scope(conn)
            command.downgrade(_config(conn), "0018")
        with engine.begin() as conn:
            _system_scope(conn)
            query = sa.select(OUTBOX_0018.c.event_id).where(OUTBOX_0018.c.published_at.is_(None))
            unpublished = set(conn.execute(query).scalars())
        assert unpublished == {*(f"e{i}" for i in (12, 15, 18, 21, 24, 27)), "late"}
        assert "outbox_pending" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_every_event_written_is_queued_with_it_and_only_if_it_commits(db_url: str) -> None:
    """`add`, `add_many` and a plain INSERT that knows nothing of the queue (a previous
    release's writer, still running while 0019 is applied) queue each event's id in the
    same transaction as the event: committed, the queue holds exactly the new ids; rolled
    back, neither is left."""
    store = Store.open(db_url)
    try:
        with store.engine.begin() as conn:
            _system_scope(conn)
            one = store.outbox.add(conn, event_id="one", topic="job.state", payload={},
                                   tenant_id="t1")  # fmt: skip
            store.outbox.add_many(conn, _events(5))
            plain = [{**e, "created_at": 1.0} for e in _events(3, "plain-")]
            conn.execute(outbox.insert(), plain)
            conn.execute(outbox.insert(), {**plain[0], "event_id": "plain-one"})
        with store.engine.connect() as conn:
            _system_scope(conn)
            ids = list(conn.execute(sa.select(outbox.c.id).order_by(outbox.c.id)).scalars())
        assert len(ids) == 10
        assert ids[0] == one
        assert _pending_ids(store) == ids
        with store.engine.connect() as conn:
            tx = conn.begin()
            _system_scope(conn)
            store.outbox.add(conn, event_id="gone", topic="job.state", payload={},
                             tenant_id="t1")  # fmt: skip
            store.outbox.add_many(conn, _events(3, "gone-"))
            tx.rollback()
        assert _pending_ids(store) == ids
        assert store.outbox.pending_count() == 10
    finally:
        store.close()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_rolled_back_claim_loses_no_event_and_a_committed_one_is_not_claimed_again(
    db_url: str,
) -> None:
    """A claim whose transaction rolls back leaves its events pending: the next claim
    returns the same events; once a claim commits, no later claim returns them."""
    store = Store.open(db_url)
    try:
        with store.engine.begin() as conn:
            _system_scope(conn)
            store.outbox.add_many(conn, _events(8))
        with store.engine.connect() as conn:
            tx = conn.begin()
            _system_scope(conn)
            lost = [h.event_id for h in store.outbox.claim_unpublished(conn, 5)]
            tx.rollback()
        assert lost == ["e0", "e1", "e2", "e3", "e4"]
        assert store.outbox.pending_count() == 8
        with store.engine.begin() as conn:
            _system_scope(conn)
            again = [h.event_id for h in store.outbox.claim_unpublished(conn, 5)]
        assert again == lost
        with store.engine.begin() as conn:
            _system_scope(conn)
            rest = [h.event_id for h in store.outbox.claim_unpublished(conn, 100)]
        assert rest == ["e5", "e6", "e7"]
        with store.engine.begin() as conn:
            _system_scope(conn)
            assert store.outbox.claim_unpublished(conn, 100) == []
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_relays_claiming_at_once_never_claim_one_event_twice(db_url: str) -> None:
    """While one relay's claim is open (not yet committed), a second relay's claim skips
    the ids the first holds and takes the next; both commit; every event was claimed by
    exactly one of them."""
    first = Store.open(db_url)
    second = Store.open(db_url, run_migrations=False)
    try:
        with first.engine.begin() as conn:
            _system_scope(conn)
            first.outbox.add_many(conn, _events(10))
        claimed: dict[str, list[str]] = {}
        holding = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with first.engine.begin() as conn:
                _system_scope(conn)
                claimed["first"] = [h.event_id for h in first.outbox.claim_unpublished(conn, 4)]
                holding.set()
                assert release.wait(30)

        thread = threading.Thread(target=hold)
        thread.start()
        try:
            assert holding.wait(30)
            with second.engine.begin() as conn:
                _system_scope(conn)
                heads = second.outbox.claim_unpublished(conn, 100)
                claimed["second"] = [h.event_id for h in heads]
        finally:
            release.set()
            thread.join(30)
        assert claimed["first"] == ["e0", "e1", "e2", "e3"]
        assert claimed["second"] == [f"e{i}" for i in range(4, 10)]
        assert first.outbox.pending_count() == 0
    finally:
        second.close()
        first.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_claim_reads_no_more_than_it_claims_even_as_a_generic_plan(db_url: str) -> None:
    """The relay's claim runs as a prepared statement (psycopg prepares it after a few
    executions, and PostgreSQL then may use a plan made without the parameters' values),
    with statistics taken while a burst was pending: even that plan walks the queue's
    primary key and fetches the claimed events by the outbox's, never a sequential scan of
    the outbox (which grows with every event kept) or of the queue."""
    store = Store.open(db_url)
    try:
        with store.engine.begin() as conn:  # a burst written, analyzed while pending …
            _system_scope(conn)
            store.outbox.add_many(conn, _events(5000))
        with store.engine.connect() as conn:
            autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
            autocommit.exec_driver_sql("ANALYZE outbox")
            autocommit.exec_driver_sql("ANALYZE outbox_pending")
        with store.engine.begin() as conn:  # … then published: the statistics lag
            _system_scope(conn)
            conn.execute(outbox_pending.delete().where(outbox_pending.c.id <= 4900))
        compiled = claim_heads_statement(1000).compile(dialect=store.engine.dialect)
        sql = compiled.string
        for number, name in enumerate(compiled.params, 1):
            sql = sql.replace(f"%({name})s", f"${number}")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql(f"PREPARE claim AS {sql}")
            args = ", ".join(
                repr(v) if not isinstance(v, str) else f"'{v}'" for v in compiled.params.values()
            )
            plan = "\n".join(
                str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN EXECUTE claim({args})")
            )
            conn.exec_driver_sql("DEALLOCATE claim")
        assert "Seq Scan" not in plan, plan
        assert "pk_outbox_pending" in plan, plan
        assert "pk_outbox" in plan.replace("pk_outbox_pending", ""), plan
    finally:
        store.close()
