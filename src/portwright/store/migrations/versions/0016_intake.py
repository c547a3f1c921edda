"""intake: the tenant-wide intake forms (e.g. the directories' business profile) and a chat
id per customer user (the Telegram-style bot channel); the new table under the tenant
row-level security policy

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from portwright.store.migrations import isolate_tenant_rows, release_tenant_rows

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.create_table(
        "intake_forms",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("form", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_intake_forms_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "form", name=op.f("pk_intake_forms")),
    )
    with op.batch_alter_table("customer_users") as batch:
        batch.add_column(sa.Column("chat_id", sa.String(length=64), nullable=True))
    isolate_tenant_rows("intake_forms")


def downgrade() -> None:
    release_tenant_rows("intake_forms")
    with op.batch_alter_table("customer_users") as batch:
        batch.drop_column("chat_id")
    op.drop_table("intake_forms")
