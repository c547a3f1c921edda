"""Row-level security on PostgreSQL: tenant tables show a connection only the rows of the
tenant its transaction is scoped to, all rows in the system scope, and none otherwise.

The application connects as an ordinary role that owns its database (superusers bypass
row-level security), as it would in production.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from alembic import command

from portwright.store import Store, migrate
from portwright.store._migrate import _config
from portwright.store._scope import tenant_transaction

PG_BASE = os.environ.get("PORTWRIGHT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
PG_HOST = PG_BASE.rsplit("@", 1)[-1]

pytestmark = pytest.mark.postgres


@dataclass
class AppDatabase:
    url: str  # as the application's role
    store: Store
    tenant_a: str
    tenant_b: str


def _admin() -> sa.Engine:
    return sa.create_engine(
        PG_BASE.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
        isolation_level="AUTOCOMMIT",
    )


def _add_job(store: Store, tenant_id: str, job_id: str) -> None:
    store.jobs.insert(
        job_id=job_id, tenant_id=tenant_id, adapter="echo", adapter_version="1", portal="echo",
        state="QUEUED", status="queued", input={}, lock_key=None, priority=0, actor="test",
    )  # fmt: skip


@pytest.fixture
def app_db() -> Iterator[AppDatabase]:
    """A database owned by a fresh non-superuser role, migrated by the store as that role,
    with two jobs of tenant A and one of tenant B."""
    if os.environ.get("PORTWRIGHT_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
    role = f"pw_app_{secrets.token_hex(4)}"
    name = f"pw_rls_{secrets.token_hex(4)}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
    url = f"postgresql+psycopg://{role}@{PG_HOST}/{name}"
    store = Store.open(url)
    try:
        a = store.tenants.ensure("rls-a").id
        b = store.tenants.ensure("rls-b").id
        _add_job(store, a, "job_a1")
        _add_job(store, a, "job_a2")
        _add_job(store, b, "job_b1")
        yield AppDatabase(url, store, a, b)
    finally:
        store.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def _job_ids(conn: sa.Connection) -> set[str]:
    return {row[0] for row in conn.execute(sa.text("SELECT id FROM jobs"))}


def test_a_connection_without_a_tenant_sees_no_tenant_rows(app_db: AppDatabase) -> None:
    """Connected as the application, no scope set: jobs, events, keys all read empty."""
    engine = sa.create_engine(app_db.url)
    try:
        with engine.connect() as conn:
            assert _job_ids(conn) == set()
            assert conn.execute(sa.text("SELECT count(*) FROM job_events")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM tenants")).scalar_one() == 2
    finally:
        engine.dispose()


def test_a_transaction_scoped_to_a_tenant_sees_only_its_rows(app_db: AppDatabase) -> None:
    """With tenant A set for the transaction, an unfiltered SELECT returns only A's jobs;
    the setting ends with the transaction."""
    engine = sa.create_engine(app_db.url)
    try:
        with engine.connect() as conn:
            conn.execute(
                sa.text("SELECT set_config('portwright.tenant_id', :t, true)"),
                {"t": app_db.tenant_a},
            )
            assert _job_ids(conn) == {"job_a1", "job_a2"}
            conn.commit()
            assert _job_ids(conn) == set()
    finally:
        engine.dispose()


def test_the_store_reads_across_tenants_in_the_system_scope(app_db: AppDatabase) -> None:
    """The store's own connections (workers, janitor) see every tenant's rows."""
    store = app_db.store
    assert {job.id for job in store.jobs.search(limit=10)} == {"job_a1", "job_a2", "job_b1"}
    with store.engine.connect() as conn:
        assert _job_ids(conn) == {"job_a1", "job_a2", "job_b1"}


def test_the_stores_tenant_queries_are_scoped_by_the_database(app_db: AppDatabase) -> None:
    """A tenant transaction sees only that tenant's rows even without a WHERE clause, and
    cannot write a row for another tenant; the store's tenant reads go through it."""
    store = app_db.store
    with tenant_transaction(store.engine, app_db.tenant_b) as conn:
        assert _job_ids(conn) == {"job_b1"}
    assert {job.id for job in store.jobs.search(tenant_id=app_db.tenant_a)} == {
        "job_a1",
        "job_a2",
    }
    assert store.jobs.counts_by_status(tenant_id=app_db.tenant_b) == {"queued": 1}
    with (
        pytest.raises(sa.exc.ProgrammingError, match="row-level security"),
        tenant_transaction(store.engine, app_db.tenant_b) as conn,
    ):
        conn.execute(sa.text("UPDATE jobs SET tenant_id = :a"), {"a": app_db.tenant_a})
    with store.engine.connect() as conn:  # back in the system scope, nothing moved
        owners = dict(conn.execute(sa.text("SELECT id, tenant_id FROM jobs")).all())
    assert owners == {
        "job_a1": app_db.tenant_a,
        "job_a2": app_db.tenant_a,
        "job_b1": app_db.tenant_b,
    }


def test_every_tenant_table_is_under_the_policy(app_db: AppDatabase) -> None:
    """Each table with a tenant_id column has row-level security enabled and forced."""
    with app_db.store.engine.connect() as conn:
        tables = {
            row[0]
            for row in conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND column_name = 'tenant_id'"
                )
            )
        }
        guarded = {
            row[0]
            for row in conn.execute(
                sa.text("SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity")
            )
        }
    assert "jobs" in tables
    assert tables <= guarded


def _guarded_tables(engine: sa.Engine) -> set[str]:
    query = "SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity"
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(sa.text(query))}


def test_migration_0009_downgrades_and_upgrades_again(app_db: AppDatabase) -> None:
    """Downgrading to 0008 lifts every policy (the app role then reads all rows); upgrading
    restores them."""
    engine = app_db.store.engine
    assert "jobs" in _guarded_tables(engine)
    with engine.begin() as conn:
        command.downgrade(_config(conn), "0008")
    assert _guarded_tables(engine) == set()
    raw = sa.create_engine(app_db.url)
    try:
        with raw.connect() as conn:
            assert _job_ids(conn) == {"job_a1", "job_a2", "job_b1"}
        migrate(engine)
        assert "jobs" in _guarded_tables(engine)
        with raw.connect() as conn:
            assert _job_ids(conn) == set()
    finally:
        raw.dispose()
