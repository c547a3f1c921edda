"""Run the Alembic migrations programmatically (no alembic.ini to carry around).

The core's revisions form one linear chain (`migrations/versions`). An app that ships
tables declares an `AppSchema` under the entry-point group `portwright.migrations`: its
revisions are an Alembic branch of their own (labelled with the app's name), found
through `version_locations`, and its tables join the metadata the migrations are
checked against. The database is therefore current when it is at every head — the
core's and each installed app's — and `migrate` upgrades to all of them ("heads").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from portwright.plugins import MIGRATIONS, PluginError, load_plugins
from portwright.store._schema import NAMING_CONVENTION, metadata

__all__ = [
    "NAMING_CONVENTION",
    "AppSchema",
    "app_schemas",
    "current_revision",
    "current_revisions",
    "head_revision",
    "head_revisions",
    "metadata_of",
    "migrate",
]

_SCRIPTS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class AppSchema:
    """An app's tables and the Alembic versions directory that creates them.

    `metadata` should be built with `sa.MetaData(naming_convention=NAMING_CONVENTION)` so
    that constraint and index names follow the core's. `branch` is the label of the app's
    Alembic branch (its first revision's `branch_labels`)."""

    branch: str
    versions: Path
    metadata: sa.MetaData


def app_schemas() -> list[AppSchema]:
    """The installed apps' schemas (entry-point group `portwright.migrations`), by name."""
    schemas: list[AppSchema] = []
    for name, schema in load_plugins(MIGRATIONS).items():
        if not isinstance(schema, AppSchema):
            raise PluginError(
                f"plugin {name!r} in entry-point group {MIGRATIONS!r} is a "
                f"{type(schema).__name__}, not a portwright.store.AppSchema"
            )
        if not schema.versions.is_dir():
            raise PluginError(
                f"plugin {name!r} in entry-point group {MIGRATIONS!r}: its versions "
                f"directory {schema.versions} does not exist"
            )
        schemas.append(schema)
    return schemas


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    locations = [_SCRIPTS / "versions", *(s.versions for s in app_schemas())]
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: sa.Engine, revision: str = "heads") -> None:
    """Bring the app database up to `revision` (idempotent): by default every head, the
    core's and each installed app's."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # migrations see every tenant's rows
            connection.exec_driver_sql("SELECT set_config('portwright.scope', 'system', true)")
        command.upgrade(_config(connection), revision)


def head_revisions() -> frozenset[str]:
    """Every head this code's migrations lead to (the core's and each app branch's)."""
    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def current_revisions(engine: sa.Engine) -> frozenset[str]:
    """The branch tips the database is at: for a current database, `head_revisions()`;
    empty for a database never migrated.

    Alembic's version table omits a revision another one depends on (dispatch's branch
    depends on the core's 0009, so a current database lists only the dispatch head); the
    tips are read from everything applied instead. A revision this code does not know (a
    newer release migrated the database) is returned as the table lists it."""
    with engine.connect() as connection:
        listed = MigrationContext.configure(connection).get_current_heads()
    if not listed:
        return frozenset()
    try:
        applied = list(ScriptDirectory.from_config(_config()).iterate_revisions(listed, "base"))
    except CommandError:
        return frozenset(listed)
    parents: set[str] = set()
    for script in applied:
        down = script.down_revision
        parents.update((down,) if isinstance(down, str) else (down or ()))
    return frozenset(script.revision for script in applied) - parents


def _shown(revisions: frozenset[str]) -> str:
    return ", ".join(sorted(revisions))


def head_revision() -> str:
    """`head_revisions()` as one string (sorted, comma-separated): for display, and to
    compare with `current_revision`."""
    return _shown(head_revisions())


def current_revision(engine: sa.Engine) -> str | None:
    """`current_revisions(engine)` as one string like `head_revision()`; None when the
    database was never migrated."""
    return _shown(current_revisions(engine)) or None


def metadata_of() -> list[sa.MetaData]:
    """The metadata of every table the code declares, the core's and the installed apps'
    (what the migrations must create)."""
    return [metadata, *(s.metadata for s in app_schemas())]
