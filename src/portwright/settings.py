"""Portwright's one settings object, read from the environment once, at the edge.

Every variable is prefixed `PORTWRIGHT_`, e.g. `PORTWRIGHT_DATABASE_URL`.
Construct `Settings()` in an entry point (CLI, ASGI factory, test fixture) and
pass it, or the part needed, to constructors; library code never reads the
environment itself.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "WebhookSource"]


class WebhookSource(BaseModel):
    """One inbound webhook source: how it signs, its active secrets, what handles its events."""

    model_config = {"frozen": True}

    scheme: Literal["standard", "stripe", "shopify"]
    secrets: list[SecretStr] = Field(min_length=1, max_length=2, description="two for rotation")
    handler: str = Field("record", description="processing: 'record' (store only) or 'payment'")
    tenant: str | None = Field(None, description="tenant name the events belong to, if any")
    require_timestamp: bool = Field(
        False,
        description="refuse an event without a signed timestamp within webhook_tolerance_s "
        "(Standard Webhooks and Stripe-style always sign one; a Shopify-style body must carry "
        "webhook.triggered_at)",
    )


class Settings(BaseSettings):
    """Typed configuration; unknown `PORTWRIGHT_*` variables are ignored."""

    model_config = SettingsConfigDict(env_prefix="PORTWRIGHT_", extra="ignore", frozen=True)

    data_dir: Path = Field(Path(".portwright"), description="where SQLite files and blobs live")
    database_url: str | None = Field(
        None,
        description="application database; default SQLite in data_dir, postgresql://… to scale out",
    )
    system_database_url: str | None = Field(
        None,
        description="DBOS system database; default: SQLite beside the app db, or the same Postgres",
    )
    redis_url: str | None = Field(None, description="shared rate-limit buckets (optional)")
    nats_url: str | None = Field(
        None, description="publish the outbox to NATS JetStream (optional, off when unset)"
    )
    nats_stream: str = Field("PORTWRIGHT", description="the JetStream stream events go to")
    master_key: SecretStr | None = Field(
        None,
        description="wraps per-tenant data keys: 32 random bytes (base64 or hex), or a "
        "passphrase of 32+ bytes (derived with HKDF); shorter is refused",
    )
    worker_id: str | None = Field(None, description="stable executor id for this process")
    worker_concurrency: int = Field(32, ge=1, description="jobs one worker runs at once")
    worker_metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="`portwright worker` serves its own /metrics (captchas, proxies, browser "
        "pool) on this port; unset: none",
    )
    heartbeat_interval_s: float = Field(2.0, gt=0)
    dead_worker_after_s: float = Field(15.0, gt=0, description="missed heartbeats mean dead")
    queue_polling_interval_s: float = Field(0.2, gt=0)
    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        "none",
        description="OpenTelemetry traces (needs the otel extra): 'console' prints spans to "
        "stderr, 'otlp' sends them to OTEL_EXPORTER_OTLP_ENDPOINT; 'none': off",
    )
    sandbox_seed: int = 1
    chromium_path: str | None = Field(None, description="Chromium executable; else autodetect")
    browser_live_view: bool = Field(
        True,
        description="local browsers also listen for CDP on a loopback port, so the console "
        "can stream a running job's page and let an operator take over",
    )
    captcha_solver_url: str | None = Field(None, description="a 2captcha-compatible service")
    captcha_api_key: SecretStr | None = Field(None, description="its API key")
    blob_url: str | None = Field(
        None,
        description="where evidence and traces go: s3://bucket/prefix (needs the s3 extra); "
        "default: data_dir/blobs",
    )
    s3_endpoint_url: str | None = Field(
        None, description="an S3-compatible server (MinIO, Ceph, R2…); default AWS"
    )
    s3_region: str | None = Field(None, description="the bucket's region")
    s3_access_key_id: str | None = Field(None, description="else boto3's own credential chain")
    s3_secret_access_key: SecretStr | None = Field(None, description="its secret")
    # -- gateway ------------------------------------------------------------------------
    previous_master_keys: list[SecretStr] = Field(
        default_factory=list, description="older master keys, still able to unwrap data keys"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="request bodies above: 413")
    # Limits a reverse proxy would set (nginx: 8 KB per header line, 32 KB in all), so the
    # gateway is safe to expose without one.
    max_header_bytes: int = Field(
        32_768, ge=1024, description="a request head (request line and headers) above: 431"
    )
    max_header_line_bytes: int = Field(8_192, ge=256, description="one header line above: 431")
    max_headers: int = Field(100, ge=8, description="more request headers than this: 431")
    request_header_timeout_s: float = Field(
        20.0,
        gt=0,
        description="a request head not complete this long after the server began waiting "
        "for it: 408 and the connection closed (nothing sent at all: closed)",
    )
    request_body_timeout_s: float = Field(
        30.0, gt=0, description="a request body not complete this long after its head: 408"
    )
    url_allowlist: list[str] = Field(
        default_factory=list,
        description="addresses user URLs may reach despite the SSRF guard: IP|CIDR[:PORT|:*]",
    )
    rate_limit_default: str = Field("600/minute", description="per API key and route (reads)")
    rate_limit_write: str = Field("120/minute", description="per API key and route (POST…)")
    rate_limit_sensitive: str = Field("10/minute", description="code/input submission per key")
    rate_limit_auth_failures: str = Field("20/minute", description="bad keys per client address")
    api_key_cache_s: float = Field(2.0, ge=0, description="how long a verified key is trusted")
    webhook_sources: dict[str, WebhookSource] = Field(default_factory=dict)
    webhook_tolerance_s: float = Field(300.0, gt=0, description="allowed webhook clock skew")

    @field_validator("database_url", "system_database_url")
    @classmethod
    def _normalise_postgres(cls, value: str | None) -> str | None:
        """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
        if value and value.startswith(("postgres://", "postgresql://")):
            rest = value.split("://", 1)[1]
            return f"postgresql+psycopg://{rest}"
        return value

    @property
    def app_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'portwright.sqlite').resolve()}"

    @property
    def dbos_database_url(self) -> str:
        if self.system_database_url:
            return self.system_database_url
        if self.app_database_url.startswith("sqlite"):
            return f"sqlite:///{(self.data_dir / 'dbos.sqlite').resolve()}"
        return self.app_database_url

    @property
    def is_sqlite(self) -> bool:
        return self.app_database_url.startswith("sqlite")

    def executor_id(self) -> str:
        """This process's DBOS executor id: the configured one, else host-pid."""
        return self.worker_id or f"{socket.gethostname()}-{os.getpid()}"
