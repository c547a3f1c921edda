"""The store on SQLite and PostgreSQL: migrations, pragmas, breakers, worker claims."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portwright.store import BreakerPolicy, Store, current_revision, head_revision, metadata_of


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
