"""The outbox as the relay's queue: a partial index on the unpublished ids (0018)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from portwright.store import Store, create_engine, migrate
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
