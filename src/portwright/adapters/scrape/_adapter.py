"""The scrape adapter (scenario 2): fetch one URL over HTTP behind the SSRF guard, extract.

Engines: this adapter runs the HTTP rung of the ladder ("auto" and "http");
the browser rungs extend it later. Every connection, redirects included, goes
through `GuardedTransport`, so a URL that passed the gateway cannot be
redirected (or re-resolved) to a private address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from portwright.adapters.scrape._extract import ExtractRule, extract, title_of
from portwright.engines.http import USER_AGENT
from portwright.gateway.ssrf import UrlGuard, UrlRefusedError, guarded_client
from portwright.sdk import Adapter, Job, PermanentError, RetryPolicy, StepContext, linear_machine

__all__ = ["ScrapeAdapter", "ScrapeInput"]

MAX_BYTES = 5_000_000


class ScrapeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    engine: Literal["auto", "http", "browser", "stealth"] = "auto"
    wait_for: str | None = None
    extract: dict[str, ExtractRule] = Field(default_factory=dict)
    screenshot: bool = False
    session_id: str | None = None
    proxy_tier: str | None = None
    proxy_country: str | None = None
    webhook: str | None = None
    batch_id: str | None = None


class ScrapeAdapter(Adapter[ScrapeInput]):
    """Fetches `url`, applies the extraction rules, returns them with status and title."""

    name: ClassVar[str] = "scrape"
    portal: ClassVar[str | None] = "scrape"
    input_model = ScrapeInput
    machine = linear_machine("scrape", ["FETCHING"])
    retry = RetryPolicy(max_attempts=3, base_delay_s=0.2, max_delay_s=2.0, degraded_after=3)
    max_concurrency = 16
    engines: ClassVar[tuple[str, ...]] = ("auto", "http")
    guard: ClassVar[UrlGuard] = UrlGuard()

    @classmethod
    def with_guard(cls, guard: UrlGuard) -> type[ScrapeAdapter]:
        """This adapter with another SSRF guard (e.g. the sandbox's ports allowlisted)."""
        return type("ScrapeAdapter", (cls,), {"guard": guard, "__doc__": cls.__doc__})

    async def run(self, job: Job[ScrapeInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("FETCHING")
        result: dict[str, Any] = await job.step(
            "fetch", self._fetch, job.input.model_dump(mode="json")
        )
        return result

    async def _fetch(self, sc: StepContext, data: dict[str, Any]) -> dict[str, Any]:
        request = ScrapeInput.model_validate(data)
        async with guarded_client(self.guard, user_agent=USER_AGENT) as client:
            try:
                response = await client.get(request.url)
            except UrlRefusedError as exc:
                raise PermanentError(f"url refused by the SSRF guard: {exc}") from None
            except httpx.TooManyRedirects as exc:
                raise PermanentError(f"too many redirects from {request.url}: {exc}") from None
        sc.check(response)
        if response.status_code >= 400:
            raise PermanentError(f"{response.status_code} from {request.url}")
        html = response.text[:MAX_BYTES]
        return {
            "url": request.url,
            "final_url": str(response.url),
            "status": response.status_code,
            "engine": "http",
            "title": title_of(html),
            "extracted": extract(html, request.extract),
            "bytes": len(response.content),
        }
