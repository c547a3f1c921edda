"""fan-out: child jobs point at their parent, one item key per item; durable step notes

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("item_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("notes", JSON_TYPE, nullable=True))
        batch_op.create_index(
            batch_op.f("ix_jobs_parent_id_item_key"), ["parent_id", "item_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_parent_id_item_key"))
        batch_op.drop_column("notes")
        batch_op.drop_column("item_key")
        batch_op.drop_column("parent_id")
