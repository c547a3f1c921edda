"""results: evidence bytes kept in the database while the blob store is down, targeted
outbox events (a request's webhook), batches counted as their items end

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

POLICY = "portwright_tenant_isolation"  # migration 0009's row-level security policy
_VISIBLE = (
    "current_setting('portwright.scope', true) = 'system' "
    "OR tenant_id = current_setting('portwright.tenant_id', true)"
)


def upgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("data", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("target", sa.Text(), nullable=True))
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("webhook", sa.Text(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cancelled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("batches") as batch:
        batch.create_index(
            batch.f("ix_batches_tenant_id_created_at"), ["tenant_id", "created_at"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE "batches" ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE "batches" FORCE ROW LEVEL SECURITY')
        op.execute(
            f'CREATE POLICY {POLICY} ON "batches" USING ({_VISIBLE}) WITH CHECK ({_VISIBLE})'
        )


def downgrade() -> None:
    op.drop_table("batches")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("target")
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("data")
