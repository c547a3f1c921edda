"""The resources section of the settings: proxies, captcha providers, browsers, identities.

Plain Pydantic models, validated where they are read (`portwright.toml` or `PORTWRIGHT_*`),
so a bad value stops the process at start with the setting's path in the message. Every
value is hostile input: URLs are parsed and their scheme, host and port checked, counts and
durations are bounded, and names are short identifiers (they end up in metrics and logs).

A credential may be written in clear, or as a reference resolved at load time:
`env:NAME` (an environment variable) or `file:/path` (a file's content, trailing newline
dropped: Docker/Kubernetes secrets). A reference that does not resolve is a settings error.
Credentials are `SecretStr`: their reprs and logs show `**********`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

__all__ = [
    "BrowserProviderConfig",
    "BrowsersConfig",
    "CaptchaBudgetConfig",
    "CaptchaConfig",
    "CaptchaProviderConfig",
    "Credential",
    "IdentitiesConfig",
    "IdentityPoolConfig",
    "ProviderBreakerConfig",
    "ProxiesConfig",
    "ProxyEntry",
    "ProxyGatewayConfig",
    "ProxyListConfig",
    "TierConfig",
    "check_url",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_MAX_SECRET_BYTES = 4096


def _resolve_credential(value: Any) -> Any:
    """`env:NAME` / `file:/path` references, resolved; anything else passes unchanged."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    if value.startswith("env:"):
        name = value[4:]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
            raise ValueError("env: must name an environment variable (letters, digits, _)")
        found = os.environ.get(name)
        if found is None:
            raise ValueError(f"environment variable {name} is not set")
        return found
    if value.startswith("file:"):
        path = Path(value[5:])
        try:
            data = path.read_bytes()[: _MAX_SECRET_BYTES + 1]
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
        if len(data) > _MAX_SECRET_BYTES:
            raise ValueError(f"secret file {path} is larger than {_MAX_SECRET_BYTES} bytes")
        return data.decode("utf-8", errors="strict").rstrip("\r\n")
    if len(value) > _MAX_SECRET_BYTES:
        raise ValueError(f"longer than {_MAX_SECRET_BYTES} characters")
    return value


Credential = Annotated[SecretStr, BeforeValidator(_resolve_credential)]
"""A secret: clear text, `env:NAME` or `file:/path` (resolved when the settings load)."""


def check_url(value: str, schemes: tuple[str, ...], *, what: str = "URL") -> str:
    """`value` if it is an absolute URL with one of `schemes`, a host, a valid port, no
    credentials in it and no whitespace; else ValueError saying what is wrong."""
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise ValueError(f"{what} must be a non-empty string of at most 2048 characters")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError(f"{what} must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{what} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"{what} must start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname:
        raise ValueError(f"{what} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{what} must not carry credentials (user:password@); use the credential settings"
        )
    if port == 0:
        raise ValueError(f"{what} has port 0")
    host = parts.hostname
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{what} has an invalid host {host!r}") from None
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "must be 1-63 characters: letters, digits, '_', '.', '-' (starting with a "
            "letter or digit)"
        )
    return value


Name = Annotated[str, BeforeValidator(lambda v: _name(v) if isinstance(v, str) else v)]


def _country(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise ValueError("must be a two-letter country code (ISO 3166-1 alpha-2)")
    return value.upper()


Country = Annotated[str | None, BeforeValidator(_country)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderBreakerConfig(_Strict):
    """A provider's circuit breaker: at least `min_calls` outcomes within `window_s`
    failing at `failure_rate` or more open it for `open_s`."""

    window_s: float = Field(60.0, gt=0, le=86_400)
    min_calls: int = Field(5, ge=1, le=10_000)
    failure_rate: float = Field(0.5, gt=0, le=1)
    open_s: float = Field(30.0, gt=0, le=86_400)


class TierConfig(_Strict):
    """A proxy tier: `rank` orders escalation (lowest first), `cost` is credits per request."""

    rank: int = Field(ge=0, le=100)
    cost: float = Field(ge=0, le=1_000_000)


class ProxyEntry(_Strict):
    """One proxy of a list; unset fields take the list's values."""

    server: str
    name: Name | None = None
    tier: str | None = None
    country: Country = None
    username: str | None = Field(None, max_length=256)
    password: Credential | None = None

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        check_url(value, ("http", "https", "socks5"), what="proxy server")
        if urlsplit(value).path not in ("", "/"):
            raise ValueError("proxy server must be scheme://host:port, without a path")
        return value.rstrip("/")


def _entry(value: Any) -> Any:
    return {"server": value} if isinstance(value, str) else value


class ProxyListConfig(_Strict):
    """A static list of proxies (bought datacenter IPs, a provider's port list)."""

    name: Name
    tier: str = "datacenter"
    country: Country = None
    username: str | None = Field(None, max_length=256)
    password: Credential | None = None
    proxies: list[Annotated[ProxyEntry, BeforeValidator(_entry)]] = Field(
        min_length=1, max_length=10_000
    )

    @model_validator(mode="after")
    def _distinct(self) -> ProxyListConfig:
        names = [p.name for p in self.proxies if p.name]
        if len(set(names)) != len(names):
            raise ValueError("proxy names within a list must be distinct")
        return self


class ProxyGatewayConfig(_Strict):
    """A rotating gateway: one endpoint, the identity chosen by the username."""

    name: Name
    server: str
    username: str = Field(min_length=1, max_length=256)
    password: Credential
    tier: str = "residential"
    countries: list[Annotated[str, BeforeValidator(_country)]] = Field(min_length=1, max_length=250)
    slots: int = Field(4, ge=1, le=1000, description="concurrent sessions per country")
    max_sessions: int = Field(20, ge=1, le=100_000, description="new sessions per slot")
    username_template: str = Field(
        "{user}-country-{country}-session-{session}", min_length=1, max_length=256
    )

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        return ProxyEntry._server(value)

    @field_validator("username_template")
    @classmethod
    def _template(cls, value: str) -> str:
        fields = set(re.findall(r"{([^{}]*)}", value))
        unknown = fields - {"user", "country", "session"}
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {sorted(unknown)}; use user, country, session"
            )
        if "session" not in fields:
            raise ValueError("must contain {session} (else rotation cannot mint a new identity)")
        return value


class ProxiesConfig(_Strict):
    """Where proxies come from, their tiers, and the providers' breakers."""

    lists: list[ProxyListConfig] = Field(default_factory=list, max_length=100)
    gateways: list[ProxyGatewayConfig] = Field(default_factory=list, max_length=100)
    tiers: dict[Name, TierConfig] = Field(
        default_factory=dict,
        description="extra or changed tiers beside datacenter(0), residential(1), mobile(2)",
    )
    breaker: ProviderBreakerConfig = Field(default_factory=ProviderBreakerConfig)

    @property
    def configured(self) -> bool:
        return bool(self.lists or self.gateways)

    def tier_names(self) -> set[str]:
        return {"datacenter", "residential", "mobile", *self.tiers}

    @model_validator(mode="after")
    def _consistent(self) -> ProxiesConfig:
        names = [p.name for p in self.lists] + [g.name for g in self.gateways]
        if len(set(names)) != len(names):
            raise ValueError("proxy list and gateway names must be distinct")
        known = self.tier_names()
        for where, tier in (
            *((f"lists.{p.name}", p.tier) for p in self.lists),
            *((f"lists.{p.name}.{e.server}", e.tier) for p in self.lists for e in p.proxies),
            *((f"gateways.{g.name}", g.tier) for g in self.gateways),
        ):
            if tier is not None and tier not in known:
                raise ValueError(
                    f"{where}: unknown tier {tier!r}; known: {', '.join(sorted(known))} "
                    "(declare more under proxies.tiers)"
                )
        return self


CaptchaStyle = Literal["2captcha", "createtask"]


class CaptchaProviderConfig(_Strict):
    """One captcha service, by API style: `2captcha` (in.php/res.php) or `createtask`
    (JSON createTask/getTaskResult)."""

    name: Name
    style: CaptchaStyle
    url: str
    api_key: Credential
    poll_s: float = Field(2.0, gt=0, le=60)
    timeout_s: float = Field(120.0, gt=0, le=3600)
    task_type: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_]+$",
        description="2captcha: the `method` (default userrecaptcha); createtask: the task "
        "`type` (default RecaptchaV2TaskProxyless)",
    )
    breaker: ProviderBreakerConfig | None = Field(
        None, description="this provider's breaker; default captcha.breaker"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value, ("http", "https"), what="captcha provider url").rstrip("/")


class CaptchaBudgetConfig(_Strict):
    """At most `limit` solves per tenant per `period_s` (with per-tenant overrides)."""

    limit: int = Field(ge=0, le=100_000_000)
    period_s: float = Field(86_400.0, gt=0, le=31_622_400)
    tenants: dict[str, Annotated[int, Field(ge=0, le=100_000_000)]] = Field(default_factory=dict)


class CaptchaConfig(_Strict):
    """The solver chain: `providers` in fallback order, then an operator."""

    providers: list[CaptchaProviderConfig] = Field(default_factory=list, max_length=20)
    budget: CaptchaBudgetConfig | None = None
    breaker: ProviderBreakerConfig = Field(default_factory=ProviderBreakerConfig)

    @model_validator(mode="after")
    def _distinct(self) -> CaptchaConfig:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError("captcha provider names must be distinct")
        return self


class BrowserProviderConfig(_Strict):
    """A browser provider: `local` (this machine's Chromium) or `cdp` (a remote browser
    reached over the Chrome DevTools Protocol)."""

    name: Name
    kind: Literal["local", "cdp"]
    concurrency: int = Field(2, ge=1, le=1000, description="browsers open at once on it")
    chromium_path: str | None = Field(
        None, max_length=4096, description="local: the executable; default as chromium_path"
    )
    url: str | None = Field(
        None,
        description="cdp: ws(s)://… or http(s)://host:port; `{token}` is replaced by token",
    )
    token: Credential | None = Field(None, description="cdp: put into the url's {token}")
    headers: dict[str, Credential] = Field(
        default_factory=dict, description="cdp: headers sent on connect (e.g. Authorization)"
    )
    timeout_s: float = Field(30.0, gt=0, le=600, description="cdp: connect timeout")

    @model_validator(mode="after")
    def _by_kind(self) -> BrowserProviderConfig:
        if self.kind == "cdp":
            if self.url is None:
                raise ValueError("a cdp provider needs url (ws://…, wss://… or http://host:port)")
            probe = self.url.replace("{token}", "token")
            check_url(probe, ("ws", "wss", "http", "https"), what="cdp url")
            if "{token}" in self.url and self.token is None:
                raise ValueError("url contains {token} but no token is set")
            if self.chromium_path is not None:
                raise ValueError("chromium_path is for local providers")
        elif self.url is not None or self.token is not None or self.headers:
            raise ValueError("url, token and headers are for cdp providers")
        for header in self.headers:
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", header):
                raise ValueError(f"header name {header!r} is not a valid HTTP header name")
        return self

    def endpoint(self) -> str:
        """The cdp URL with its token filled in (a secret: never log it)."""
        if self.url is None:
            raise ValueError(f"browser provider {self.name} has no url")
        token = self.token.get_secret_value() if self.token is not None else ""
        return self.url.replace("{token}", token)


class BrowsersConfig(_Strict):
    """Where browsers come from, in order of preference (a provider at its concurrency, or
    failing to start one, hands over to the next). None configured: local Chromium."""

    providers: list[BrowserProviderConfig] = Field(default_factory=list, max_length=20)
    contexts_per_browser: int = Field(4, ge=1, le=100)

    @model_validator(mode="after")
    def _distinct(self) -> BrowsersConfig:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError("browser provider names must be distinct")
        return self


class IdentityPoolConfig(_Strict):
    """A named selection of the proxy pool: proxies of `tier` (any when unset) in `country`
    (any when unset)."""

    tier: str | None = None
    country: Country = None


class IdentitiesConfig(_Strict):
    """Which network identity each adapter's jobs use: `direct` (no proxy), `proxies` (the
    whole pool, cheapest tier first) or a pool named under `pools`."""

    default: str = Field("direct", description="for adapters not listed under `adapters`")
    pools: dict[Name, IdentityPoolConfig] = Field(default_factory=dict)
    adapters: dict[Name, str] = Field(
        default_factory=dict, description="portal (adapter) name → pool name"
    )

    @model_validator(mode="after")
    def _known(self) -> IdentitiesConfig:
        reserved = {"direct", "proxies"} & set(self.pools)
        if reserved:
            raise ValueError(f"pool name(s) {sorted(reserved)} are reserved")
        known = {"direct", "proxies", *self.pools}
        for where, pool in (("default", self.default), *self.adapters.items()):
            if pool not in known:
                raise ValueError(
                    f"{where}: unknown identity pool {pool!r}; known: {', '.join(sorted(known))}"
                )
        return self
