"""dispatch: a driver's token epoch (tokens issued before the current epoch are revoked)

Revision ID: dispatch_0002
Revises: dispatch_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dispatch_0002"
down_revision = "dispatch_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "dispatch_drivers",
        sa.Column("token_epoch", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("dispatch_drivers") as batch:
        batch.drop_column("token_epoch")
