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
    "console_sessions",
    "credentials",
    "customer_sessions",
    "customer_tokens",
    "customer_users",
    "deliveries",
    "delivery_attempts",
    "dispatch_assignments",
    "dispatch_drivers",
    "escalations",
    "evidence",
    "idempotency_keys",
    "job_events",
    "jobs",
    "metadata",
    "notification_prefs",
    "notifications",
    "observations",
    "operators",
    "outbox",
    "portals",
    "proxy_burns",
    "selector_maps",
    "tenants",
    "tier_memory",
    "usage_counters",
    "usage_records",
    "vault_keys",
    "webhook_endpoints",
    "webhook_inbox",
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
    sa.Column("scopes", sa.String(200), nullable=False, server_default="jobs"),
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
    sa.Column("parent_id", sa.String(64)),
    sa.Column("item_key", sa.String(200)),
    sa.Column("notes", Json),
    sa.Column("trace_parent", sa.String(64)),  # W3C traceparent of the submitting span
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
    sa.Index(None, "parent_id", "item_key"),
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

# -- gateway (migration 0002) --------------------------------------------------------------

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("headers", Json),
    sa.Column("body", sa.LargeBinary),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index(None, "expires_at"),
)

webhook_inbox = sa.Table(
    "webhook_inbox",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False, server_default=""),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(64)),
    sa.Column("event_type", sa.String(200), nullable=False, server_default=""),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float),
    sa.Column("leased_by", sa.String(200)),
    sa.Column("result", sa.Text),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("processed_at", sa.Float),
    sa.UniqueConstraint("source", "external_id", "event_id"),
    sa.Index(None, "status", "next_attempt_at"),
)

vault_keys = sa.Table(
    "vault_keys",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("master_kid", sa.String(32), nullable=False),
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.Float, nullable=False),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("key_version", sa.Integer, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

usage_counters = sa.Table(
    "usage_counters",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("jobs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("credits", sa.Integer, nullable=False, server_default="0"),
)

usage_records = sa.Table(
    "usage_records",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("api_key_id", sa.String(64)),
    sa.Column("job_id", sa.String(64)),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("tier", sa.String(16)),
    sa.Column("credits", sa.Integer, nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "tenant_id", "period"),
)

# -- the browser fleet (engines): tier memory per site, proxy burns ------------------------

tier_memory = sa.Table(
    "tier_memory",
    metadata,
    sa.Column("site", sa.String(255), primary_key=True),
    sa.Column("rung", sa.String(32), primary_key=True),
    sa.Column("successes", sa.Float, nullable=False, server_default="0"),
    sa.Column("failures", sa.Float, nullable=False, server_default="0"),
    sa.Column("last_ok_at", sa.Float),
    sa.Column("last_fail_at", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
)

proxy_burns = sa.Table(
    "proxy_burns",
    metadata,
    sa.Column("proxy", sa.String(200), primary_key=True),
    sa.Column("scope", sa.String(255), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("burned_at", sa.Float, nullable=False),
    sa.Column("until", sa.Float),
    sa.Index(None, "until"),
)

# -- operator console (migration 0006) -----------------------------------------------------

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id")),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("disabled_at", sa.Float),
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("operator_id", sa.String(64), sa.ForeignKey("operators.id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index(None, "operator_id"),
)


# -- delivery (0005) ---------------------------------------------------------------------

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("event_id", sa.String(120), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(64)),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False, server_default=""),
    sa.Column("platform", sa.String(100)),
    sa.Column("payload", Json, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("published_at", sa.Float),
    sa.Index(None, "published_at", "id"),
    sa.Index(None, "tenant_id", "id"),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False, server_default="webhook"),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secrets", Json, nullable=False),
    sa.Column("topics", Json, nullable=False),
    sa.Column("platform", sa.String(100)),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="8"),
    sa.Column("breaker_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("breaker_open_until", sa.Float),
    sa.Column("delayed_since", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("outbox_id", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(120), nullable=False),
    sa.Column("endpoint_id", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("platform", sa.String(100)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float),
    sa.Column("leased_by", sa.String(200)),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("event_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.UniqueConstraint("endpoint_id", "event_id"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "tenant_id", "status"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("delivery_id", sa.String(64), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

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

# -- dispatch (0007) ---------------------------------------------------------------------

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
)

# -- customers (0012) --------------------------------------------------------------------

customer_users = sa.Table(
    "customer_users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("phone", sa.String(32)),
    sa.Column("verified_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("disabled_at", sa.Float),
    sa.Index(None, "tenant_id"),
)

customer_sessions = sa.Table(
    "customer_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("customer_users.id"), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index(None, "user_id"),
)

customer_tokens = sa.Table(
    "customer_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("customer_users.id"), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sa.Index(None, "user_id", "purpose"),
)

notification_prefs = sa.Table(
    "notification_prefs",
    metadata,
    sa.Column("user_id", sa.String(64), sa.ForeignKey("customer_users.id"), primary_key=True),
    sa.Column("event", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(64)),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("subject", sa.Text, nullable=False, server_default=""),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "tenant_id", "created_at"),
)
