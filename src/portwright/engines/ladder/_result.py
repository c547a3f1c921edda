"""What a ladder fetch returns: the content, the rung and identity that got it, the cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portwright.engines.ladder._extract import Extracted

__all__ = ["Attempt", "FetchResult"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try on one rung: `outcome` is ok, blocked, unrendered, rate_limited, transient,
    proxy_failed or exhausted."""

    rung: str
    proxy: str | None
    outcome: str
    detail: str
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A fetched page. `rung` worked; `credits` is its price; `attempts` tells the climb."""

    url: str
    final_url: str
    status: int
    html: str
    title: str | None
    extracted: dict[str, Extracted]
    screenshot: bytes | None
    rung: str
    engine: str
    proxy: str | None
    proxy_tier: str | None
    credits: int
    attempts: tuple[Attempt, ...]
    elapsed_s: float
    captcha_solved: bool

    @property
    def started_on(self) -> str:
        """The rung the fetch started on (tier memory's choice)."""
        return self.attempts[0].rung if self.attempts else self.rung

    @property
    def climbed(self) -> bool:
        return any(a.rung != self.rung for a in self.attempts)

    def summary(self) -> dict[str, Any]:
        """A JSON-able account of the fetch, without the page or the screenshot."""
        return {
            "url": self.url,
            "final_url": self.final_url,
            "status": self.status,
            "title": self.title,
            "extracted": self.extracted,
            "rung": self.rung,
            "engine": self.engine,
            "proxy": self.proxy,
            "proxy_tier": self.proxy_tier,
            "credits": self.credits,
            "captcha_solved": self.captcha_solved,
            "elapsed_s": round(self.elapsed_s, 3),
            "attempts": [
                {
                    "rung": a.rung,
                    "proxy": a.proxy,
                    "outcome": a.outcome,
                    "detail": a.detail,
                    "elapsed_s": round(a.elapsed_s, 3),
                }
                for a in self.attempts
            ],
        }
