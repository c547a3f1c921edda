"""The outbox as the relay's queue: a partial index on the unpublished ids (0018)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from portwright.store import Store, create_engine, migrate
from portwright.store._outbox import claim_statement
from portwright.store._schema import outbox


def _system_scope(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":  # every tenant's rows, whatever the role
        conn.exec_driver_sql("SELECT set_config('portwright.scope', 'system', true)")


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_database_with_outbox_rows_upgrades_to_the_unpublished_index(db_url: str) -> None:
    """A database at 0017 with published and unpublished events upgrades: the relay's
    queue is the partial index on unpublished ids, the old (published_at, id) index is
    gone, and exactly the unpublished events are counted, claimed, oldest first."""
    engine = create_engine(db_url)
    try:
        migrate(engine, "0017")
        now = time.time()
        rows = [
            {"event_id": f"e{i}", "tenant_id": "t1", "topic": "job.state", "subject": "",
             "payload": {"i": i}, "created_at": now, "published_at": now if i % 3 else None}
            for i in range(30)
        ]  # fmt: skip
        with engine.begin() as conn:
            _system_scope(conn)
            conn.execute(outbox.insert(), rows)
        migrate(engine)
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("outbox")}
        assert "ix_outbox_unpublished" in indexes
        assert "ix_outbox_published_at_id" not in indexes
    finally:
        engine.dispose()
    store = Store.open(db_url)
    try:
        assert store.outbox.pending_count() == 10
        with store.engine.begin() as conn:
            _system_scope(conn)
            claimed = store.outbox.claim_unpublished(conn, 4)
        assert [c.event_id for c in claimed] == ["e0", "e3", "e6", "e9"]
        assert store.outbox.pending_count() == 6
        with store.engine.connect() as conn:  # rolled back: claimed by nobody
            tx = conn.begin()
            _system_scope(conn)
            assert len(store.outbox.claim_unpublished(conn, 100)) == 6
            tx.rollback()
        assert store.outbox.pending_count() == 6
        assert [e.event_id for e in store.outbox.peek_unpublished(100)] == [
            "e12", "e15", "e18", "e21", "e24", "e27",
        ]  # fmt: skip
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_claim_reads_no_more_of_the_outbox_than_it_claims_even_as_a_generic_plan(
    db_url: str,
) -> None:
    """The relay's claim runs as a prepared statement (psycopg prepares it after a few
    executions, and PostgreSQL then may use a plan made without the parameters' values),
    with statistics taken while a burst was unpublished: even that plan walks the
    unpublished index and fetches the claimed ids by primary key, never a sequential scan
    of the whole outbox (which grows with every event kept). `id IN (subquery)` did."""
    store = Store.open(db_url)
    try:
        now = time.time()
        rows = [
            {"event_id": f"e{i}", "tenant_id": "t1", "topic": "job.state", "subject": "",
             "payload": {"i": i}, "created_at": now}
            for i in range(5000)
        ]  # fmt: skip
        with store.engine.begin() as conn:  # a burst written, analyzed while unpublished …
            _system_scope(conn)
            conn.execute(outbox.insert(), rows)
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE outbox")
        with store.engine.begin() as conn:  # … then published: the statistics lag
            _system_scope(conn)
            conn.execute(outbox.update().where(outbox.c.id <= 4900).values(published_at=now))
        compiled = claim_statement("postgresql", 1000).compile(dialect=store.engine.dialect)
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
        assert "Seq Scan on outbox" not in plan, plan
        assert "ix_outbox_unpublished" in plan, plan
    finally:
        store.close()
