"""Alembic environment: runs against the connection handed in by portwright.store.migrate."""

from __future__ import annotations

from alembic import context

from portwright.store._migrate import metadata_of

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic CLI
    raise RuntimeError("run migrations with `portwright migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata_of(),  # the core's tables and the installed apps'
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
