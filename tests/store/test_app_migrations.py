"""Apps ship their own tables in their own Alembic branches (entry-point group
`portwright.migrations`): the database is current at every head, and a database
migrated when dispatch's tables were still core revisions upgrades cleanly.

`legacy_chain/` holds core revisions 0005 and 0007 as they were then (they created
`dispatch_assignments` and `dispatch_drivers`); the other core revisions are unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

import portwright.store.migrations as core_migrations
from portwright.apps.dispatch.tables import SCHEMA as DISPATCH
from portwright.store import (
    Store,
    app_schemas,
    create_engine,
    current_revision,
    current_revisions,
    head_revision,
    head_revisions,
    metadata_of,
    migrate,
)
from portwright.store._migrate import _config

LEGACY = Path(__file__).parent / "legacy_chain"
CORE = Path(core_migrations.__file__).parent
DISPATCH_TABLES = {"dispatch_assignments", "dispatch_drivers"}


def _system_scope(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":  # every tenant's rows, whatever the role
        conn.exec_driver_sql("SELECT set_config('portwright.scope', 'system', true)")


def _legacy_upgrade(engine: sa.Engine, tmp_path: Path) -> None:
    """Migrate with the old, single chain: core 0001-0009 with the old 0005 and 0007."""
    versions = tmp_path / "legacy_versions"
    versions.mkdir()
    for script in sorted((CORE / "versions").glob("000[1-9]_*.py")):
        shutil.copy(script, versions / script.name)
    for script in LEGACY.glob("000*.py"):
        shutil.copy(script, versions / script.name)
    cfg = Config()
    cfg.set_main_option("script_location", str(CORE))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(versions))
    with engine.begin() as conn:
        _system_scope(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _guarded(engine: sa.Engine) -> set[str]:
    query = "SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity"
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(sa.text(query))}


def test_dispatch_is_an_installed_app_schema_with_its_own_head() -> None:
    """The dispatch app's schema is found through its entry point, and its branch head is
    one of the heads the database must reach, besides the core's."""
    assert DISPATCH in app_schemas()
    heads = head_revisions()
    assert "dispatch_0002" in heads
    assert len(heads) == 2
    assert head_revision() == ", ".join(sorted(heads))
    assert DISPATCH.metadata in metadata_of()


def test_the_core_chain_alone_creates_no_app_table(db_url: str) -> None:
    """Upgrading only the core's chain leaves out the app tables; `migrate` then adds the
    app's branch and the database is at every head."""
    engine = create_engine(db_url)
    try:
        core_head = sorted(head_revisions() - {"dispatch_0002"})[0]
        migrate(engine, core_head)
        assert not DISPATCH_TABLES & _tables(engine)
        assert current_revisions(engine) == {core_head}
        migrate(engine)
        assert _tables(engine) >= DISPATCH_TABLES
        assert current_revisions(engine) == head_revisions()
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_database_migrated_by_the_old_chain_upgrades_to_every_head(
    db_url: str, tmp_path: Path
) -> None:
    """A database that got dispatch's tables from the old core revisions keeps them and
    their rows: the dispatch branch adopts them, the schema then matches what the code
    declares, and on PostgreSQL they stay under row-level security."""
    engine = create_engine(db_url)
    try:
        _legacy_upgrade(engine, tmp_path)
        assert current_revisions(engine) == {"0009"}
        assert _tables(engine) >= DISPATCH_TABLES
        with engine.begin() as conn:
            _system_scope(conn)
            conn.execute(
                sa.text(
                    "INSERT INTO dispatch_drivers (tenant_id, driver_id, name, available, "
                    "created_at, updated_at) VALUES ('t1', 'd1', 'Ada', true, 1.0, 1.0)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO dispatch_assignments (order_key, tenant_id, platform, "
                    "order_id, driver_id, status, version, updated_at) "
                    "VALUES ('t1:shop:o1', 't1', 'shop', 'o1', 'd1', 'assigned', 1, 1.0)"
                )
            )

        migrate(engine)

        assert current_revisions(engine) == head_revisions()
        with engine.begin() as conn:
            _system_scope(conn)
            drivers = conn.execute(sa.text("SELECT driver_id, name FROM dispatch_drivers"))
            assert [tuple(r) for r in drivers] == [("d1", "Ada")]
            orders = conn.execute(sa.text("SELECT order_key, driver_id FROM dispatch_assignments"))
            assert [tuple(r) for r in orders] == [("t1:shop:o1", "d1")]
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata_of()) == []
        if engine.dialect.name == "postgresql":
            assert _guarded(engine) >= DISPATCH_TABLES
        migrate(engine)  # again: nothing to do
        assert current_revisions(engine) == head_revisions()
    finally:
        engine.dispose()


def test_the_app_branch_downgrades_alone(db_url: str) -> None:
    """Downgrading the dispatch branch to its base drops its tables and leaves the core at
    its head; `migrate` brings them back."""
    store = Store.open(db_url)
    engine = store.engine
    try:
        with engine.begin() as conn:
            _system_scope(conn)
            command.downgrade(_config(conn), "dispatch@base")
        assert not DISPATCH_TABLES & _tables(engine)
        assert "dispatch_0002" not in current_revisions(engine)
        assert "jobs" in _tables(engine)
        migrate(engine)
        assert _tables(engine) >= DISPATCH_TABLES
        if engine.dialect.name == "postgresql":
            assert _guarded(engine) >= DISPATCH_TABLES
    finally:
        store.close()


@pytest.mark.parametrize("name", ["0005_delivery.py", "0007_dispatch.py"])
def test_the_legacy_revisions_keep_the_ids_of_the_core_chain(name: str) -> None:
    """The old revisions the upgrade test replays have the ids and parents the core chain
    still has, so the old database's history is the new chain's."""
    old = (LEGACY / name).read_text()
    new = (CORE / "versions" / name).read_text()
    for line in ("revision = ", "down_revision = "):
        assert [x for x in old.splitlines() if x.startswith(line)] == [
            x for x in new.splitlines() if x.startswith(line)
        ]
