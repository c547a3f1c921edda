"""The rungs of the engine ladder, cheapest first, and the ladder's knobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from portwright.resources.ssrf import per_origin

__all__ = ["DEFAULT_RUNGS", "ENGINE_RUNGS", "EngineKind", "LadderConfig", "Rung", "site_of"]

EngineKind = Literal["http", "tls", "browser", "stealth"]


@dataclass(frozen=True, slots=True)
class Rung:
    """One way to fetch: an engine on a proxy tier, at a price in credits."""

    name: str
    engine: EngineKind
    proxy_tier: str | None
    credits: int


DEFAULT_RUNGS: tuple[Rung, ...] = (
    Rung("http", "http", "datacenter", 1),
    Rung("http-tls", "tls", "datacenter", 2),
    Rung("browser", "browser", "residential", 5),
    Rung("stealth", "stealth", "mobile", 10),
)

# What each value of the scrape API's `engine` option allows.
ENGINE_RUNGS: dict[str, tuple[str, ...]] = {
    "auto": ("http", "http-tls", "browser", "stealth"),
    "http": ("http", "http-tls"),
    "browser": ("browser",),
    "stealth": ("stealth",),
}


@dataclass(frozen=True, slots=True)
class LadderConfig:
    """How hard the ladder tries before it climbs, waits or gives up."""

    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    identities_per_rung: int = 2  # banned identities burned on one rung before climbing
    transient_retries: int = 2  # same-rung retries of timeouts, 5xx, dead proxies
    rate_limit_retries: int = 4  # 429s absorbed (rotating identity, then waiting) per fetch
    max_wait_s: float = 10.0  # longest Retry-After the ladder sleeps itself
    captcha_attempts: int = 2
    success_threshold: float = 0.9  # a rung "works" on a site above this success rate
    reprobe_after_s: float = 3600.0  # a failed cheaper rung is tried again after this
    timeout_s: float = 30.0
    settle_s: float = 6.0  # how long a browser waits for a challenge page to move on
    max_html_bytes: int = 5_000_000
    trace: bool = False  # Playwright trace of browser rungs (the evidence sink gets it)


@per_origin
def site_of(url: str) -> str:
    """The tier memory's key for `url`: scheme, host and port (remembered per origin:
    every fetch asks it, a batch's URLs share a few)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"
