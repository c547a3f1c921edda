"""adapter versions side by side: per-portal (and per-tenant) rollouts, shadow comparisons,
synthetic portal probes

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "adapter_rollouts",
        sa.Column("portal", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("adapter", sa.String(length=100), nullable=False),
        sa.Column("live", sa.String(length=32), nullable=False),
        sa.Column("canary", sa.String(length=32), nullable=True),
        sa.Column("canary_percent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("canary_tenants", Json, nullable=False),
        sa.Column("shadow", sa.String(length=32), nullable=True),
        sa.Column("promote_after", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rollback_margin", sa.Float(), server_default="0.2", nullable=False),
        sa.Column("rollback_window_s", sa.Float(), server_default="3600", nullable=False),
        sa.Column("rollback_min_jobs", sa.Integer(), server_default="5", nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("portal", "scope", name=op.f("pk_adapter_rollouts")),
    )
    op.create_table(
        "shadow_results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("portal", sa.String(length=100), nullable=False),
        sa.Column("adapter", sa.String(length=100), nullable=False),
        sa.Column("step", sa.String(length=100), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("live_version", sa.String(length=32), nullable=False),
        sa.Column("shadow_version", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_results")),
    )
    op.create_index(
        op.f("ix_shadow_results_portal_shadow_version_created_at"),
        "shadow_results",
        ["portal", "shadow_version", "created_at"],
    )
    op.create_table(
        "portal_probes",
        sa.Column("portal", sa.String(length=100), nullable=False),
        sa.Column("input", Json, nullable=False),
        sa.Column("every_s", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=True),
        sa.Column("last_version", sa.String(length=32), nullable=True),
        sa.Column("last_outcome", sa.String(length=32), nullable=True),
        sa.Column("last_detail", sa.Text(), nullable=True),
        sa.Column("last_ok_at", sa.Float(), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("portal", name=op.f("pk_portal_probes")),
    )


def downgrade() -> None:
    op.drop_table("portal_probes")
    op.drop_index(
        op.f("ix_shadow_results_portal_shadow_version_created_at"), table_name="shadow_results"
    )
    op.drop_table("shadow_results")
    op.drop_table("adapter_rollouts")
