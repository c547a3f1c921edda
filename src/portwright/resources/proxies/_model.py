"""What a proxy is to the pool: an identity with a tier, a country, a provider and a price."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypedDict
from urllib.parse import quote, urlsplit

__all__ = ["DEFAULT_TIERS", "PlaywrightProxy", "Proxy", "Tier"]


@dataclass(frozen=True, slots=True)
class Tier:
    """A class of proxies; `rank` orders escalation, `cost` is credits per request through one."""

    name: str
    rank: int
    cost: float


DEFAULT_TIERS: Mapping[str, Tier] = MappingProxyType(
    {
        "datacenter": Tier("datacenter", 0, 1.0),
        "residential": Tier("residential", 1, 5.0),
        "mobile": Tier("mobile", 2, 10.0),
    }
)


class PlaywrightProxy(TypedDict, total=False):
    """The `proxy=` argument of a Playwright browser context."""

    server: str
    bypass: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Proxy:
    """One network identity. `name` is stable (burns and health are kept by it)."""

    name: str
    server: str
    tier: str
    country: str
    provider: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.server)
        if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
            raise ValueError(f"proxy server must be scheme://host:port, got {self.server!r}")
        if parts.username or parts.password:
            raise ValueError("put proxy credentials in username/password, not in the server URL")

    @property
    def url(self) -> str:
        """The proxy URL with credentials, as HTTP clients take it (never log it)."""
        if not self.username:
            return self.server
        scheme, rest = self.server.split("://", 1)
        user = quote(self.username, safe="")
        secret = quote(self.password or "", safe="")
        return f"{scheme}://{user}:{secret}@{rest}"

    def for_playwright(self) -> PlaywrightProxy:
        """Playwright's proxy option; loopback targets go through the proxy too."""
        option = PlaywrightProxy(server=self.server, bypass="<-loopback>")
        if self.username:
            option["username"] = self.username
            option["password"] = self.password or ""
        return option
