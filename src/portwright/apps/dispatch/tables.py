"""Dispatch's own tables, and the Alembic branch that creates them.

They are not part of the core schema: the core finds them through the entry point
`portwright.migrations: dispatch = "portwright.apps.dispatch.tables:SCHEMA"`, adds this
package's `migrations/` directory to Alembic's version locations, and `migrate` brings
the `dispatch` branch to its head with the core's.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from portwright.store import NAMING_CONVENTION, AppSchema

__all__ = ["SCHEMA", "dispatch_assignments", "dispatch_drivers", "metadata"]

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# Which driver carries which shop order (one row per order, versioned).
dispatch_assignments = sa.Table(
    "dispatch_assignments",
    metadata,
    sa.Column("order_key", sa.String(200), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(100), nullable=False),
    sa.Column("order_id", sa.String(200), nullable=False),
    sa.Column("driver_id", sa.String(100)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index(None, "tenant_id", "driver_id"),
)

# The drivers of each tenant: roster, availability, last location.
dispatch_drivers = sa.Table(
    "dispatch_drivers",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("driver_id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("available", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("lat", sa.Float),
    sa.Column("lon", sa.Float),
    sa.Column("location_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # Driver tokens carry the epoch they were issued in; bumping it revokes them all.
    sa.Column("token_epoch", sa.Integer, nullable=False, server_default="0"),
)

SCHEMA = AppSchema(
    branch="dispatch", versions=Path(__file__).parent / "migrations", metadata=metadata
)
