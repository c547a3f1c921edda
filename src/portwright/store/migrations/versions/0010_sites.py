"""sites: per target site cooldown and degraded mark (one site's 429 slows that site only);
usage_records indexed by job (a key's unfinished jobs, for per-key concurrency caps)

A portal whose jobs reach many sites (the scrape adapter) keeps a row per host, and one
per (host, tenant) for a rate limit a tenant's own identity met. On PostgreSQL the table
goes under the same row-level security policy as every table with a tenant_id (0009).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

POLICY = "portwright_tenant_isolation"
_VISIBLE = (
    "current_setting('portwright.scope', true) = 'system' "
    "OR tenant_id = current_setting('portwright.tenant_id', true)"
)


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("portal", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=260), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("cooldown_until", sa.Float(), nullable=True),
        sa.Column("cooldown_reason", sa.Text(), nullable=True),
        sa.Column("degraded_since", sa.Float(), nullable=True),
        sa.Column("degraded_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sites")),
    )
    op.create_index(op.f("ix_sites_portal_host"), "sites", ["portal", "host"], unique=False)
    op.create_index(op.f("ix_usage_records_job_id"), "usage_records", ["job_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE "sites" ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE "sites" FORCE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY {POLICY} ON "sites" USING ({_VISIBLE}) WITH CHECK ({_VISIBLE})')


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_records_job_id"), table_name="usage_records")
    op.drop_index(op.f("ix_sites_portal_host"), table_name="sites")
    op.drop_table("sites")
