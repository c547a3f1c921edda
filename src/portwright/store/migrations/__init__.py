"""The core's Alembic scripts, and the helpers an app's own migrations use.

An app that ships tables (entry-point group `portwright.migrations`, see
`portwright.store.AppSchema`) keeps its revisions in its own Alembic branch: the first
has `down_revision = None`, `branch_labels = ("<app>",)` and `depends_on` the core
revision it needs. A table with a `tenant_id` column goes under the same row-level
security as the core's (migration 0009): call `isolate_tenant_rows(table)` after
creating it, in a branch that depends on "0009".
"""

from __future__ import annotations

__all__ = ["TENANT_POLICY", "TENANT_VISIBLE", "isolate_tenant_rows", "release_tenant_rows"]

TENANT_POLICY = "portwright_tenant_isolation"
TENANT_VISIBLE = (
    "current_setting('portwright.scope', true) = 'system' "
    "OR tenant_id = current_setting('portwright.tenant_id', true)"
)


def _on_postgres() -> bool:
    from alembic import op

    return bool(op.get_bind().dialect.name == "postgresql")


def isolate_tenant_rows(table: str) -> None:
    """Enable and force row-level security on `table` with the tenant policy (PostgreSQL;
    nothing on SQLite). Idempotent: a table that already has the policy gets it anew."""
    from alembic import op

    if not _on_postgres():
        return
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(f'DROP POLICY IF EXISTS {TENANT_POLICY} ON "{table}"')
    op.execute(
        f'CREATE POLICY {TENANT_POLICY} ON "{table}" '
        f"USING ({TENANT_VISIBLE}) WITH CHECK ({TENANT_VISIBLE})"
    )


def release_tenant_rows(table: str) -> None:
    """Undo `isolate_tenant_rows(table)` (PostgreSQL; nothing on SQLite)."""
    from alembic import op

    if not _on_postgres():
        return
    op.execute(f'DROP POLICY IF EXISTS {TENANT_POLICY} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
