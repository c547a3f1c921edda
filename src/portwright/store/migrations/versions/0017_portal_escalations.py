"""portal-level escalations: an escalation may have no job (a synthetic probe found its
portal changed before any job did); at most one unresolved per portal and kind

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"

_OPEN_PORTAL_LEVEL = "job_id IS NULL AND status != 'resolved'"


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.alter_column("job_id", existing_type=sa.String(length=64), nullable=True)
    op.create_index(
        "uq_escalations_portal_level_open",
        "escalations",
        ["portal", "kind"],
        unique=True,
        sqlite_where=sa.text(_OPEN_PORTAL_LEVEL),
        postgresql_where=sa.text(_OPEN_PORTAL_LEVEL),
    )


def downgrade() -> None:
    op.drop_index("uq_escalations_portal_level_open", table_name="escalations")
    op.execute("DELETE FROM escalations WHERE job_id IS NULL")
    with op.batch_alter_table("escalations") as batch:
        batch.alter_column("job_id", existing_type=sa.String(length=64), nullable=False)
