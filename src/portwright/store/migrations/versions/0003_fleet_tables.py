"""fleet tables: tier memory per site and rung, proxy burns

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "proxy_burns",
        sa.Column("proxy", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("burned_at", sa.Float(), nullable=False),
        sa.Column("until", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("proxy", "scope", name=op.f("pk_proxy_burns")),
    )
    with op.batch_alter_table("proxy_burns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proxy_burns_until"), ["until"], unique=False)

    op.create_table(
        "tier_memory",
        sa.Column("site", sa.String(length=255), nullable=False),
        sa.Column("rung", sa.String(length=32), nullable=False),
        sa.Column("successes", sa.Float(), server_default="0", nullable=False),
        sa.Column("failures", sa.Float(), server_default="0", nullable=False),
        sa.Column("last_ok_at", sa.Float(), nullable=True),
        sa.Column("last_fail_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("site", "rung", name=op.f("pk_tier_memory")),
    )


def downgrade() -> None:
    op.drop_table("tier_memory")
    with op.batch_alter_table("proxy_burns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proxy_burns_until"))

    op.drop_table("proxy_burns")
