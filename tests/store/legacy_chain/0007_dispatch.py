"""dispatch: the drivers of each tenant (roster, availability, last location)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "dispatch_drivers",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("driver_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("available", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("location_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "driver_id", name=op.f("pk_dispatch_drivers")),
    )


def downgrade() -> None:
    op.drop_table("dispatch_drivers")
