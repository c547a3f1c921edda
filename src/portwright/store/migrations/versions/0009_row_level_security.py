"""PostgreSQL row-level security on every table with a tenant_id column (no-op on SQLite)

A row is visible, and may be written, only in a transaction scoped to its tenant
(`portwright.tenant_id`, set with `set_config(..., true)`), or in the system scope
(`portwright.scope` = 'system') that workers, the janitor, the relay and migrations
work in. A connection that sets neither sees no tenant rows at all. FORCE makes the
policy bind the tables' owner too (the application's role); only superusers and roles
with BYPASSRLS are exempt. See `portwright.store._scope`.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from portwright.store.migrations import isolate_tenant_rows, release_tenant_rows

revision = "0009"
down_revision = "0008"


def _tenant_tables() -> list[str]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT c.table_name FROM information_schema.columns c "
            "JOIN information_schema.tables t "
            "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id' "
            "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name"
        )
    )
    return [str(row[0]) for row in rows]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _tenant_tables():
        isolate_tenant_rows(table)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _tenant_tables():
        release_tenant_rows(table)
