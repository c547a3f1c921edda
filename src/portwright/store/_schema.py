"""Portwright's tables, one schema for SQLite and PostgreSQL.

Times are float seconds since the epoch (UTC): unambiguous on both engines.
The Alembic migrations under `migrations/` create exactly this metadata; a
test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "api_keys",
    "audit_log",
    "breaker_outcomes",
    "breakers",
    "escalations",
    "evidence",
    "job_events",
    "jobs",
    "metadata",
    "observations",
    "portals",
    "selector_maps",
    "tenants",
    "workers",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = sa.JSON().with_variant(JSONB(), "postgresql")

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("plan", sa.String(32), nullable=False, server_default="starter"),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

portals = sa.Table(
    "portals",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("max_concurrency", sa.Integer, nullable=False, server_default="4"),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("paused_reason", sa.Text),
    sa.Column("cooldown_until", sa.Float),
    sa.Column("cooldown_reason", sa.Text),
    sa.Column("degraded_since", sa.Float),
    sa.Column("degraded_reason", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
)

breakers = sa.Table(
    "breakers",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, server_default="closed"),
    sa.Column("opened_at", sa.Float),
    sa.Column("open_until", sa.Float),
    sa.Column("probe_lease_until", sa.Float),
    sa.Column("reason", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
)

breaker_outcomes = sa.Table(
    "breaker_outcomes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index(None, "name", "at"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("adapter", sa.String(100), nullable=False),
    sa.Column("adapter_version", sa.String(32), nullable=False),
    sa.Column("portal", sa.String(100), nullable=False),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("input", Json, nullable=False),
    sa.Column("output", Json),
    sa.Column("error_class", sa.String(32)),
    sa.Column("reason", sa.Text),
    sa.Column("waiting_for", sa.String(100)),
    sa.Column("lock_key", sa.String(200)),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Index(None, "tenant_id", "created_at"),
    sa.Index(None, "portal", "status"),
    sa.Index(None, "status", "created_at"),
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("from_state", sa.String(64)),
    sa.Column("to_state", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("meta", Json, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("job_id", "seq"),
)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("portal", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("step", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.Column("decision", Json),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claimed_at", sa.Float),
    sa.Column("resolved_by", sa.String(200)),
    sa.Column("resolved_at", sa.Float),
    sa.Index(None, "status", "created_at"),
    sa.Index(None, "job_id"),
)

evidence = sa.Table(
    "evidence",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("step", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("blob_key", sa.String(500), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("meta", Json, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "job_id"),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("portal", sa.String(100), nullable=False),
    sa.Column("tenant_id", sa.String(64)),
    sa.Column("job_id", sa.String(64)),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("value", Json, nullable=False),
    sa.Column("observed_at", sa.Float, nullable=False),
    sa.Index(None, "portal", "kind", "subject", "observed_at"),
)

selector_maps = sa.Table(
    "selector_maps",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("adapter", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("selectors", Json, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("adapter", "version"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("hostname", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("taken_over_by", sa.String(200)),
    sa.Column("taken_over_at", sa.Float),
    sa.Column("recovered", sa.Integer, nullable=False, server_default="0"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.String(64)),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(200), nullable=False),
    sa.Column("before", Json),
    sa.Column("after", Json),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "target_type", "target_id"),
    sa.Index(None, "created_at"),
)
