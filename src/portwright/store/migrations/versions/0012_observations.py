"""slot_observations: slot scans stored as runs per (portal, center, visa type)

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "slot_observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("portal", sa.String(length=100), nullable=False),
        sa.Column("center", sa.String(length=64), nullable=False),
        sa.Column("visa_type", sa.String(length=64), nullable=False),
        sa.Column("open", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column(
            "slot_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("first_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.Column("scans", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_observations")),
    )
    with op.batch_alter_table("slot_observations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_slot_observations_portal_center_visa_type_first_at"),
            ["portal", "center", "visa_type", "first_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("slot_observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slot_observations_portal_center_visa_type_first_at"))
    op.drop_table("slot_observations")
