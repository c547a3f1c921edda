"""billing: one row per tenant with its payment provider's customer and subscription, the
billed plan, the payment status and the end of a grace period; under the tenant row-level
security policy

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from portwright.store.migrations import isolate_tenant_rows, release_tenant_rows

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("subscription_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_plan", sa.String(length=32), nullable=True),
        sa.Column("plan", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("grace_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_billing_accounts_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_billing_accounts")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_billing_accounts_customer_id")),
    )
    op.create_index(
        op.f("ix_billing_accounts_status_grace_until"),
        "billing_accounts",
        ["status", "grace_until"],
    )
    isolate_tenant_rows("billing_accounts")


def downgrade() -> None:
    release_tenant_rows("billing_accounts")
    op.drop_index(op.f("ix_billing_accounts_status_grace_until"), table_name="billing_accounts")
    op.drop_table("billing_accounts")
