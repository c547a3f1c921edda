"""Run the Alembic migrations programmatically (no alembic.ini to carry around)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from portwright.store._schema import metadata

__all__ = ["current_revision", "head_revision", "metadata_of", "migrate"]

_SCRIPTS = Path(__file__).parent / "migrations"


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the app database up to `revision` (idempotent)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # migrations see every tenant's rows
            connection.exec_driver_sql("SELECT set_config('portwright.scope', 'system', true)")
        command.upgrade(_config(connection), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def metadata_of() -> sa.MetaData:
    """The metadata of every table the code declares (what the migrations must create)."""
    return metadata
