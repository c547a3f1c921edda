"""customers: customer users, their sessions and email tokens, notification preferences and
the durable notifications outbox; every table under the tenant row-level security policy

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

TABLES = (
    "customer_users",
    "customer_sessions",
    "customer_tokens",
    "notification_prefs",
    "notifications",
)
POLICY = "portwright_tenant_isolation"
_VISIBLE = (
    "current_setting('portwright.scope', true) = 'system' "
    "OR tenant_id = current_setting('portwright.tenant_id', true)"
)


def upgrade() -> None:
    op.create_table(
        "customer_users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("verified_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("disabled_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_customer_users_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_users")),
        sa.UniqueConstraint("email", name=op.f("uq_customer_users_email")),
    )
    op.create_index(op.f("ix_customer_users_tenant_id"), "customer_users", ["tenant_id"])
    op.create_table(
        "customer_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["customer_users.id"],
            name=op.f("fk_customer_sessions_user_id_customer_users"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_customer_sessions")),
    )
    op.create_index(op.f("ix_customer_sessions_user_id"), "customer_sessions", ["user_id"])
    op.create_table(
        "customer_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["customer_users.id"],
            name=op.f("fk_customer_tokens_user_id_customer_users"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_customer_tokens")),
    )
    op.create_index(
        op.f("ix_customer_tokens_user_id_purpose"), "customer_tokens", ["user_id", "purpose"]
    )
    op.create_table(
        "notification_prefs",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["customer_users.id"],
            name=op.f("fk_notification_prefs_user_id_customer_users"),
        ),
        sa.PrimaryKeyConstraint("user_id", "event", "channel", name=op.f("pk_notification_prefs")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), server_default="", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        op.f("ix_notifications_status_next_attempt_at"),
        "notifications",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        op.f("ix_notifications_tenant_id_created_at"), "notifications", ["tenant_id", "created_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
            op.execute(
                f'CREATE POLICY {POLICY} ON "{table}" USING ({_VISIBLE}) WITH CHECK ({_VISIBLE})'
            )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
