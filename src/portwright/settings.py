"""Portwright's one settings object, read from a `portwright.toml` and the environment once,
at the edge.

Where a value comes from, highest first: arguments to `Settings(...)` (command-line flags),
`PORTWRIGHT_*` environment variables (e.g. `PORTWRIGHT_DATABASE_URL`; a nested setting with
`__`, e.g. `PORTWRIGHT_CAPTCHA__BUDGET__LIMIT=500`, or a whole section as JSON, e.g.
`PORTWRIGHT_PROXIES='{"lists": [...]}'`), the configuration file, the defaults.

The configuration file: the path in `PORTWRIGHT_CONFIG` (which must exist; `none` reads no
file), else `portwright.toml` in the current directory if there is one. Its top-level keys
are the settings' names (unknown keys are refused); the resources sections are `[proxies]`,
`[captcha]`, `[browsers]` and `[identities]` (docs/configuration.md).

Construct `Settings()` (or `load_settings()`, which turns a bad value into a `SettingsError`
naming the setting) in an entry point (CLI, ASGI factory, test fixture) and pass it, or the
part needed, to constructors; library code never reads the environment itself.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from portwright._resource_config import (
    BrowserProviderConfig,
    BrowsersConfig,
    CaptchaBudgetConfig,
    CaptchaConfig,
    CaptchaProviderConfig,
    IdentitiesConfig,
    IdentityPoolConfig,
    ProviderBreakerConfig,
    ProxiesConfig,
    ProxyEntry,
    ProxyGatewayConfig,
    ProxyListConfig,
    TierConfig,
    check_url,
)

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "BillingConfig",
    "BrowserProviderConfig",
    "BrowsersConfig",
    "CaptchaBudgetConfig",
    "CaptchaConfig",
    "CaptchaProviderConfig",
    "IdentitiesConfig",
    "IdentityPoolConfig",
    "OidcProvider",
    "ProviderBreakerConfig",
    "ProxiesConfig",
    "ProxyEntry",
    "ProxyGatewayConfig",
    "ProxyListConfig",
    "Settings",
    "SettingsError",
    "TierConfig",
    "WebhookSource",
    "config_path",
    "load_settings",
]

CONFIG_ENV = "PORTWRIGHT_CONFIG"
CONFIG_FILE = "portwright.toml"
_MAX_CONFIG_BYTES = 1_048_576


class SettingsError(ValueError):
    """The settings cannot be used; the message names each bad setting and the problem
    (never the value: it may be a secret)."""


def config_path(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The configuration file the settings read: `PORTWRIGHT_CONFIG`, else `./portwright.toml`
    if it exists, else none."""
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV)
    if named is not None:
        if named.strip().lower() in ("", "none"):
            return None
        path = Path(named).expanduser()
        if not path.is_file():
            raise SettingsError(f"{CONFIG_ENV}: no such file: {path}")
        return path
    default = (cwd or Path.cwd()) / CONFIG_FILE
    return default if default.is_file() else None


class _TomlFile(PydanticBaseSettingsSource):
    """The configuration file's values; an unreadable file or an unknown key is an error."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = config_path()

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise SettingsError(f"{self.path}: cannot read: {exc.strerror}") from None
        if len(raw) > _MAX_CONFIG_BYTES:
            raise SettingsError(f"{self.path}: larger than {_MAX_CONFIG_BYTES} bytes")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{self.path}: not valid TOML: {exc}") from None
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise SettingsError(
                f"{self.path}: unknown setting(s) {', '.join(unknown)} (see docs/configuration.md)"
            )
        return data


def _describe(exc: ValidationError, source: Path | None) -> str:
    """One line per problem: the setting's dotted path and what is wrong (no values)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {path}: {message}" if path else f"  {message}")
    where = (
        f" (file {source}, environment PORTWRIGHT_*)" if source else " (environment PORTWRIGHT_*)"
    )
    return f"invalid settings{where}:\n" + "\n".join(lines)


def load_settings(**values: Any) -> Settings:
    """`Settings(**values)`, with every problem as one `SettingsError` naming the settings."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        try:
            source = config_path()
        except SettingsError:
            source = None
        raise SettingsError(_describe(exc, source)) from None


DAY_S = 86_400.0


class RetentionConfig(BaseModel):
    """How long each kind of data is kept (seconds), counted from when it ended; a
    scheduled durable job purges what is due (docs/configuration.md, "Results and
    retention"). What a running job still needs is never purged."""

    model_config = {"extra": "forbid"}

    job_metadata_s: float = Field(30 * DAY_S, gt=0, description="finished jobs, their events")
    usage_s: float = Field(90 * DAY_S, gt=0, description="usage records")
    html_s: float = Field(DAY_S, gt=0, description="stored page bodies (HTML)")
    screenshots_s: float = Field(7 * DAY_S, gt=0, description="screenshots")
    extracted_s: float = Field(30 * DAY_S, gt=0, description="stored extracted data")
    deliveries_s: float = Field(30 * DAY_S, gt=0, description="finished outbound deliveries")
    outbox_s: float = Field(30 * DAY_S, gt=0, description="published outbox events")
    inbox_s: float = Field(30 * DAY_S, gt=0, description="processed inbound webhooks")
    batch_rows: int = Field(500, ge=1, le=100_000, description="rows purged per step")
    every_s: float = Field(300.0, ge=60, description="how often the purge runs")


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


class OidcProvider(BaseModel):
    """An OpenID Connect identity provider customers may sign in to the portal with
    (`/app/login/oidc/<name>`). Register `<public_url>/app/login/oidc/<name>/callback` as
    the client's redirect URI at the provider."""

    model_config = {"frozen": True}

    issuer: str = Field(
        max_length=500,
        description="the provider's issuer URL (https://; http:// only on a loopback "
        "address); its /.well-known/openid-configuration is read at the first sign-in",
    )
    client_id: str = Field(min_length=1, max_length=300)
    client_secret: SecretStr
    label: str = Field("", max_length=60, description="the button's text: 'Sign in with …'")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        check_url(value, ("http", "https"), what="issuer")
        if value.startswith("http://") and not _loopback(value):
            raise ValueError("issuer: https:// is required (http:// only on a loopback address)")
        return value.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("scopes: must include 'openid'")
        return value


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BillingConfig(BaseModel):
    """Billing through a payment provider (docs/customers.md, "Billing"). The Stripe
    provider talks to `api_base` (unset: Stripe itself); the sandbox points it at localstripe.
    Its payment webhooks come through a `webhook_sources` entry with scheme "stripe" and
    handler "billing"."""

    model_config = {"frozen": True}

    provider: Literal["none", "stripe"] = Field(
        "none", description="'stripe': checkout, plan changes and invoices through Stripe"
    )
    api_key: SecretStr | None = Field(None, description="the provider's secret key (sk_…)")
    publishable_key: str = Field(
        "pk_test_portwright",
        max_length=200,
        description="the key the checkout page's Stripe.js uses",
    )
    api_base: str | None = Field(
        None, description="the provider's API address; unset: Stripe's own (https://api.stripe.com)"
    )
    js_url: str = Field(
        "https://js.stripe.com/v3/", description="Stripe.js for the checkout page's card field"
    )
    currency: str = Field("eur", pattern=r"^[a-z]{3}$")
    prices: dict[str, int] = Field(
        default_factory=lambda: {"growth": 4900, "business": 19900},
        description="monthly price per plan in the currency's minor unit; plans named here are "
        "sold in the portal, the free plan costs nothing",
    )
    free_plan: str = Field("starter", description="the plan without a subscription")
    grace_period_s: float = Field(
        7 * DAY_S,
        ge=0,
        description="after a failed payment the paid plan lasts this long, then the tenant "
        "goes back to the free plan",
    )
    sweep_every_s: float = Field(
        60.0, gt=0, description="how often ended grace periods are checked"
    )

    @field_validator("api_base", "js_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        if value:
            check_url(value, ("http", "https"), what="billing url")
        return value or None

    @field_validator("prices")
    @classmethod
    def _prices(cls, value: dict[str, int]) -> dict[str, int]:
        for plan, cents in value.items():
            if cents <= 0:
                raise ValueError(f"{plan}: a price must be positive, not {cents}")
        return value

    @model_validator(mode="after")
    def _key(self) -> BillingConfig:
        if self.provider == "stripe" and self.api_key is None:
            raise ValueError("api_key: required when provider is 'stripe'")
        return self


class Settings(BaseSettings):
    """Typed configuration; unknown `PORTWRIGHT_*` variables are ignored."""

    model_config = SettingsConfigDict(
        env_prefix="PORTWRIGHT_", extra="ignore", frozen=True, env_nested_delimiter="__"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then PORTWRIGHT_* variables, then the configuration file."""
        return (init_settings, env_settings, _TomlFile(settings_cls))

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
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto",
        description="the event loop of the long-running commands (up, api, worker, the "
        "relay): auto takes uvloop where it is installed (with uvicorn's standard extras, "
        "Linux and macOS), else asyncio's; uvloop insists on it",
    )
    gc_young_threshold: int = Field(
        20_000,
        ge=0,
        description="net allocations between the garbage collector's youngest-generation "
        "passes in the long-running commands (up, api, worker, the relay), which also "
        "freeze their start-up heap; Python's default is 700; 0 keeps Python's",
    )
    worker_metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="`portwright worker` serves its own /metrics (captchas, proxies, browser "
        "pool) on this port; unset: none",
    )
    heartbeat_interval_s: float = Field(2.0, gt=0)
    dead_worker_after_s: float = Field(15.0, gt=0, description="missed heartbeats mean dead")
    drain_timeout_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="a worker stopped by SIGTERM/SIGINT takes no more work and lets its running "
        "jobs finish for at most this long before it exits (0: stop at once; what still runs "
        "resumes on another worker)",
    )
    queue_polling_interval_s: float = Field(0.2, gt=0)
    tier_concurrency: dict[str, int] = Field(
        default_factory=lambda: {"http": 16, "browser": 4, "stealth": 2},
        description=(
            "jobs running at once across all workers per engine tier's queue (scrapes); "
            "a tier left out keeps its default"
        ),
    )
    log_level: str = "INFO"
    log_json: bool = True
    display_timezone: str = Field(
        "UTC",
        min_length=1,
        max_length=64,
        description="the IANA time zone the console shows times in (e.g. Europe/Berlin); "
        "each time carries its zone; reports and the API stay in UTC",
    )
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        "none",
        description="OpenTelemetry traces (needs the otel extra): 'console' prints spans to "
        "stderr, 'otlp' sends them to OTEL_EXPORTER_OTLP_ENDPOINT; 'none': off",
    )
    public_url: str | None = Field(
        None,
        max_length=500,
        description="where customers reach this installation (https://api.example.com): "
        "links in emails and SMS (verification, password reset, answers) and result links "
        "in webhooks start with it; default: the address `portwright up` serves on (other "
        "processes: result links are paths on the gateway)",
    )
    smtp_url: str | None = Field(
        None,
        description="email to customers: smtp://[user:pass@]host:port or "
        "smtp+starttls://…; unset: no email channel",
    )
    smtp_sender: str = Field("Portwright <no-reply@portwright.local>", min_length=3)
    sms_url: str | None = Field(
        None, description="SMS to customers: the provider's HTTP endpoint (POST {to, body})"
    )
    sms_token: SecretStr | None = Field(None, description="bearer token for sms_url")
    bot_api_url: str | None = Field(
        None,
        description="chat-bot messages to customers: a Telegram-style bot API base URL "
        "(e.g. https://api.telegram.org); unset: no bot channel",
    )
    bot_token: SecretStr | None = Field(None, description="the bot's token for bot_api_url")
    staff_chat_webhook_url: str | None = Field(
        None,
        description="staff alerts (proxy pool empty, captcha provider down): a Slack-style "
        "incoming-webhook URL (POST {text}); unset: no staff chat alerts",
    )
    customer_signup: bool = Field(
        True, description="anyone may sign up at /app/signup (off: accounts are invited)"
    )
    oidc: dict[str, OidcProvider] = Field(
        default_factory=dict,
        description="identity providers for the portal's sign-in, by name (letters, digits, "
        "-): a customer user signs in with the provider's verified email",
    )
    sandbox_seed: int = 1
    chromium_path: str | None = Field(None, description="Chromium executable; else autodetect")
    browser_live_view: bool = Field(
        True,
        description="local browsers also listen for CDP on a loopback port, so the console "
        "can stream a running job's page and let an operator take over",
    )
    captcha_solver_url: str | None = Field(
        None,
        description="shorthand for one 2captcha-compatible provider named '2captcha' when "
        "captcha.providers is empty",
    )
    captcha_api_key: SecretStr | None = Field(None, description="its API key")
    # -- resources (docs/configuration.md) ---------------------------------------------------
    proxies: ProxiesConfig = Field(default_factory=ProxiesConfig)
    captcha: CaptchaConfig = Field(default_factory=CaptchaConfig)
    browsers: BrowsersConfig = Field(default_factory=BrowsersConfig)
    identities: IdentitiesConfig = Field(default_factory=IdentitiesConfig)
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
    # -- results (docs/configuration.md, "Results and retention") --------------------------
    result_inline_bytes: int = Field(
        16_384,
        ge=0,
        le=1_048_576,
        description="a scrape's page body and extracted data up to this size are inline in "
        "the result; larger ones go to the blob store behind a signed result_url",
    )
    result_link_ttl_s: float = Field(
        3600.0, gt=0, le=7 * DAY_S, description="how long a signed result_url is valid"
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
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
    billing: BillingConfig = Field(default_factory=BillingConfig)

    @field_validator("database_url", "system_database_url")
    @classmethod
    def _normalise_postgres(cls, value: str | None) -> str | None:
        """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
        if value and value.startswith(("postgres://", "postgresql://")):
            rest = value.split("://", 1)[1]
            return f"postgresql+psycopg://{rest}"
        return value

    @field_validator("tier_concurrency")
    @classmethod
    def _tier_caps(cls, value: dict[str, int]) -> dict[str, int]:
        for tier, cap in value.items():
            if tier not in ("http", "browser", "stealth"):
                raise ValueError(f"{tier}: not an engine tier; use http, browser or stealth")
            if cap < 1:
                raise ValueError(f"{tier}: a tier's cap must be at least 1, not {cap}")
        return {"http": 16, "browser": 4, "stealth": 2, **value}

    @field_validator("oidc")
    @classmethod
    def _oidc_names(cls, value: dict[str, OidcProvider]) -> dict[str, OidcProvider]:
        for name in value:
            if not name.replace("-", "").isalnum() or not name.isascii() or len(name) > 40:
                raise ValueError(f"oidc: provider name {name!r}: letters, digits and - only")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value:
            check_url(value, ("http", "https"), what="public_url")
            return value.rstrip("/")
        return None

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a known IANA time zone (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("captcha_solver_url")
    @classmethod
    def _solver_url(cls, value: str | None) -> str | None:
        if value:
            check_url(value, ("http", "https"), what="captcha solver url")
        return value or None

    @model_validator(mode="after")
    def _identity_tiers(self) -> Settings:
        known = self.proxies.tier_names()
        for name, pool in self.identities.pools.items():
            if pool.tier is not None and pool.tier not in known:
                raise ValueError(
                    f"identities.pools.{name}.tier: unknown tier {pool.tier!r}; known: "
                    f"{', '.join(sorted(known))}"
                )
        return self

    def captcha_providers(self) -> list[CaptchaProviderConfig]:
        """The captcha chain's providers: `captcha.providers`, else the `captcha_solver_url`
        shorthand (one 2captcha-compatible provider), else none."""
        if self.captcha.providers or not self.captcha_solver_url:
            return list(self.captcha.providers)
        return [
            CaptchaProviderConfig(
                name="2captcha",
                style="2captcha",
                url=self.captcha_solver_url,
                api_key=self.captcha_api_key or SecretStr(""),
                poll_s=0.25,  # what the single solver polled at before providers existed
                timeout_s=60.0,
            )
        ]

    @property
    def links_base(self) -> str:
        """Where links in customers' messages and pages lead: `public_url`, else the address
        `portwright up` serves on by default."""
        return self.public_url or "http://127.0.0.1:8000"

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
