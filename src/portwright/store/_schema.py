"""Portwright's tables, one schema for SQLite and PostgreSQL.

Times are float seconds since the epoch (UTC): unambiguous on both engines.
The Alembic migrations under `migrations/` create exactly this metadata; a
test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "NAMING_CONVENTION",
    "adapter_rollouts",
    "api_keys",
    "audit_log",
    "batches",
    "billing_accounts",
    "breaker_outcomes",
    "breakers",
    "console_sessions",
    "credentials",
    "customer_sessions",
    "customer_tokens",
    "customer_users",
    "deliveries",
    "delivery_attempts",
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
    "outbox_pending",
    "portal_probes",
    "portals",
    "proxy_burns",
    "selector_maps",
    "shadow_results",
    "sites",
    "slot_observations",
    "tenants",
    "tier_memory",
    "usage_counters",
    "usage_records",
    "vault_keys",
    "webhook_endpoints",
    "webhook_inbox",
    "workers",
]

# How constraints and indexes are named; an app's own tables use it too (AppSchema).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

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

# A target site of a portal whose jobs reach many sites (the scrape adapter: one row per
# host, and one per (host, tenant) for what a tenant's own identity caused): its cooldown
# and degraded mark, so one site's 429 slows that site only. Its breaker is the breakers
# row `site:<name>`. Rows appear when a site first needs one (a 429, a degraded mark).
sites = sa.Table(
    "sites",
    metadata,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("portal", sa.String(100), nullable=False),
    sa.Column("host", sa.String(260), nullable=False),
    sa.Column("tenant_id", sa.String(64)),
    sa.Column("cooldown_until", sa.Float),
    sa.Column("cooldown_reason", sa.Text),
    sa.Column("degraded_since", sa.Float),
    sa.Column("degraded_reason", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index(None, "portal", "host"),
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
    # how many calls ended so at `at`: a chunk's successes are one row (0020)
    sa.Column("calls", sa.Integer, nullable=False, server_default="1"),
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
    # no job (0015): a portal-level escalation (a probe found the portal changed); its
    # tenant_id is "" and at most one per portal and kind is unresolved
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), nullable=True),
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
    sa.Index(
        "uq_escalations_portal_level_open",
        "portal",
        "kind",
        unique=True,
        sqlite_where=sa.text("job_id IS NULL AND status != 'resolved'"),
        postgresql_where=sa.text("job_id IS NULL AND status != 'resolved'"),
    ),
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
    # the bytes themselves while the blob store was down (0011): moved there later
    sa.Column("data", sa.LargeBinary),
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

# Slot scans, run-length encoded per (portal, center, visa type): one row per run of scans
# that saw the same open slots with no gap longer than an hour between them. Times are the
# portal's clock (POSIX seconds); `new` counts the run's slots the previous run did not show.
# Platform-wide (no tenant): a portal's calendar is the same whoever looks at it.
slot_observations = sa.Table(
    "slot_observations",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("portal", sa.String(100), nullable=False),
    sa.Column("center", sa.String(64), nullable=False),
    sa.Column("visa_type", sa.String(64), nullable=False),
    sa.Column("open", sa.Integer, nullable=False),
    sa.Column("new", sa.Integer, nullable=False),
    sa.Column("slot_ids", Json, nullable=False),
    sa.Column("first_at", sa.Float, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
    sa.Column("scans", sa.Integer, nullable=False),
    sa.Index(None, "portal", "center", "visa_type", "first_at"),
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
    sa.Index(None, "job_id"),  # a key's unfinished jobs (per-key concurrency caps)
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
    # an endpoint URL of the tenant: only its endpoint there receives the event (0011)
    sa.Column("target", sa.Text),
    sa.Index(None, "tenant_id", "id"),
)

# The relay's queue (0019): the id of each event not yet published, written with the event
# by the trigger `outbox_queue` on `outbox` (see the migration) and deleted by the relay's
# claim. Was a `published_at` column marked on the outbox row (a whole new wide tuple and
# its index entries per event, never a HOT update); a published event is one without a row
# here. No foreign key: its check would lock each outbox row.
outbox_pending = sa.Table(
    "outbox_pending",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
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

# -- results (0011) ------------------------------------------------------------------------

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("webhook", sa.Text),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("remaining", sa.Integer, nullable=False),
    sa.Column("succeeded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancelled", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Index(None, "tenant_id", "created_at"),
)

# -- adapter versions side by side (0013) -------------------------------------------------

# Which version of a portal's adapter new jobs start on: one row per portal for every
# tenant (`scope` ''), and optionally one per tenant (`scope` = the tenant's id; not named
# tenant_id: a platform setting staff edit, not a tenant's row).
adapter_rollouts = sa.Table(
    "adapter_rollouts",
    metadata,
    sa.Column("portal", sa.String(100), primary_key=True),
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("adapter", sa.String(100), nullable=False),
    sa.Column("live", sa.String(32), nullable=False),
    sa.Column("canary", sa.String(32)),
    sa.Column("canary_percent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("canary_tenants", Json, nullable=False),
    sa.Column("shadow", sa.String(32)),
    sa.Column("promote_after", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rollback_margin", sa.Float, nullable=False, server_default="0.2"),
    sa.Column("rollback_window_s", sa.Float, nullable=False, server_default="3600"),
    sa.Column("rollback_min_jobs", sa.Integer, nullable=False, server_default="5"),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# One comparison of a read-only step run by the shadow version beside the live one.
shadow_results = sa.Table(
    "shadow_results",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("portal", sa.String(100), nullable=False),
    sa.Column("adapter", sa.String(100), nullable=False),
    sa.Column("step", sa.String(100), nullable=False),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("live_version", sa.String(32), nullable=False),
    sa.Column("shadow_version", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # agree, differ, error, refused
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "portal", "shadow_version", "created_at"),
)

# A synthetic probe per portal: the live adapter version's `probe` run on a sample input
# every `every_s`, read-only; a page change marks the portal degraded before jobs meet it.
portal_probes = sa.Table(
    "portal_probes",
    metadata,
    sa.Column("portal", sa.String(100), primary_key=True),
    sa.Column("input", Json, nullable=False),
    sa.Column("every_s", sa.Float, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("last_at", sa.Float),
    sa.Column("last_version", sa.String(32)),
    sa.Column("last_outcome", sa.String(32)),
    sa.Column("last_detail", sa.Text),
    sa.Column("last_ok_at", sa.Float),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

# -- customers (0014) --------------------------------------------------------------------

customer_users = sa.Table(
    "customer_users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("phone", sa.String(32)),
    sa.Column("chat_id", sa.String(64)),
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

billing_accounts = sa.Table(
    "billing_accounts",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("customer_id", sa.String(255), unique=True),
    sa.Column("subscription_id", sa.String(255)),
    sa.Column("checkout_id", sa.String(255)),
    sa.Column("checkout_plan", sa.String(32)),
    sa.Column("plan", sa.String(32)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("grace_until", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index(None, "status", "grace_until"),
)

# A tenant's filled intake forms (e.g. the directories' business profile), one row per form.
intake_forms = sa.Table(
    "intake_forms",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("form", sa.String(64), primary_key=True),
    sa.Column("data", Json, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
