"""dispatch: order assignments and drivers (the dispatch branch's first revision)

A database migrated before the apps had their own branches already has both tables
(core revisions 0005 and 0007 created them then): they are adopted as they are. Both
carry tenant rows, so both go under the core's row-level security (hence the
dependency on 0009).

Revision ID: dispatch_0001
Revises:
Depends on: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from portwright.store.migrations import isolate_tenant_rows, release_tenant_rows

revision = "dispatch_0001"
down_revision = None
branch_labels = ("dispatch",)
depends_on = "0009"

_TABLES = ("dispatch_assignments", "dispatch_drivers")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "dispatch_assignments" not in existing:
        op.create_table(
            "dispatch_assignments",
            sa.Column("order_key", sa.String(length=200), nullable=False),
            sa.Column("tenant_id", sa.String(length=64), nullable=False),
            sa.Column("platform", sa.String(length=100), nullable=False),
            sa.Column("order_id", sa.String(length=200), nullable=False),
            sa.Column("driver_id", sa.String(length=100), nullable=True),
            sa.Column("status", sa.String(length=32), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("order_key", name=op.f("pk_dispatch_assignments")),
        )
        op.create_index(
            op.f("ix_dispatch_assignments_tenant_id_driver_id"),
            "dispatch_assignments",
            ["tenant_id", "driver_id"],
            unique=False,
        )
    if "dispatch_drivers" not in existing:
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
    for table in _TABLES:
        isolate_tenant_rows(table)


def downgrade() -> None:
    for table in _TABLES:
        release_tenant_rows(table)
    op.drop_index(
        op.f("ix_dispatch_assignments_tenant_id_driver_id"), table_name="dispatch_assignments"
    )
    op.drop_table("dispatch_assignments")
    op.drop_table("dispatch_drivers")
