"""The scrape adapter (scenario 2): one URL through the engine ladder, behind the SSRF guard.

On a worker with a fleet (`ScrapeAdapter.on_fleet(guard)`), the fetch climbs the
ladder (`StepContext.fetch`): HTTP, HTTP with a browser's TLS, a browser, a
hardened browser, starting where the site's tier memory says, honouring the
request's engine, wait-for, extraction rules, screenshot, session (a sticky
proxy), proxy tier and country, and robots.txt. The guard runs on every URL
every rung reaches: each redirect hop, and every request a browser page makes.
The result names the tier that served the page and its price in credits (the
gateway meters that); a screenshot is stored as evidence and linked, and with
`trace` the browser tiers' Playwright trace too.

Results: the page body (`html`) and the extracted data are inline in the output when
they fit in `inline_bytes`; a larger one is stored in the blob store as evidence (kind
"html" or "extracted") and named under `results` with its size — the gateway and the
result webhook add a signed, time-limited `result_url` to each (`portwright.results`).

A worker without a fleet (`ScrapeAdapter.with_guard(guard)`) fetches over plain
HTTP only (engines "auto" and "http"), still guarded on every connection and
still honouring robots.txt.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from portwright.adapters.scrape._extract import ExtractRule, extract, title_of
from portwright.engines import Politeness
from portwright.engines.http import USER_AGENT
from portwright.resources.ssrf import UrlGuard, UrlRefusedError, guarded_client, per_origin
from portwright.sdk import (
    Adapter,
    InputTimeoutError,
    Job,
    PermanentError,
    RetryPolicy,
    Site,
    StepContext,
    TransientError,
    linear_machine,
)

__all__ = ["ENGINES", "HTTP_CREDITS", "TIERS", "ScrapeAdapter", "ScrapeInput", "host_of"]

MAX_BYTES = 5_000_000
ENGINES: tuple[str, ...] = ("auto", "http", "browser", "stealth")
HTTP_CREDITS = 1  # the plain HTTP rung's price, for a worker without a fleet
BROWSER_RECHECK_S = 30.0  # how often a job waiting for a browser looks again
BROWSERS_DOWN = "browsers_down"  # a fetch step's output when no browser would start
TIERS: tuple[str, ...] = ("http", "browser", "stealth")  # a queue each (engine "auto": http)

INLINE_BYTES = 16_384  # Settings.result_inline_bytes' default


@per_origin
def host_of(url: str) -> str | None:
    """A URL's site: its host, lowercased, with the port when one is given (remembered per
    origin: every batch item asks it)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{host}:{port}" if port is not None else host


class ScrapeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    engine: Literal["auto", "http", "browser", "stealth"] = "auto"
    wait_for: str | None = None
    extract: dict[str, ExtractRule] = Field(default_factory=dict)
    screenshot: bool = False
    trace: bool = False
    session_id: str | None = None
    proxy_tier: str | None = None
    proxy_country: str | None = None
    webhook: str | None = None
    batch_id: str | None = None
    respect_robots: bool = True


class ScrapeAdapter(Adapter[ScrapeInput]):
    """Fetches `url`, applies the extraction rules, returns them with the tier that served."""

    name: ClassVar[str] = "scrape"
    portal: ClassVar[str | None] = "scrape"
    input_model = ScrapeInput
    machine = linear_machine("scrape", ["FETCHING"])
    retry = RetryPolicy(max_attempts=3, base_delay_s=0.2, max_delay_s=2.0, degraded_after=3)
    max_concurrency = 16
    # A plain fetch is short and idempotent: batches of it run as chunks (see the SDK).
    batchable = True
    batch_size = 100
    batch_concurrency = 8
    engines: ClassVar[tuple[str, ...]] = ("auto", "http")
    guard: ClassVar[UrlGuard] = UrlGuard()
    uses_fleet: ClassVar[bool] = False
    tiers: ClassVar[tuple[str, ...]] = TIERS
    inline_bytes: ClassVar[int] = INLINE_BYTES  # larger bodies and extractions are stored
    # the fleet-less path's robots.txt cache and per-site concurrency slots
    _politeness: ClassVar[Politeness | None] = None
    # the fetch step's input as `run` dumped it, and the validated input it came from
    _dumped: tuple[dict[str, Any], ScrapeInput] | None = None

    @classmethod
    def with_guard(
        cls, guard: UrlGuard, *, inline_bytes: int = INLINE_BYTES
    ) -> type[ScrapeAdapter]:
        """This adapter over plain HTTP with another SSRF guard (a worker without a fleet)."""
        attrs = {
            "guard": guard,
            "uses_fleet": False,
            "engines": ("auto", "http"),
            "inline_bytes": inline_bytes,
        }
        return type("ScrapeAdapter", (cls,), {**attrs, "__doc__": cls.__doc__})

    @classmethod
    def on_fleet(
        cls,
        guard: UrlGuard,
        *,
        engines: tuple[str, ...] = ENGINES,
        inline_bytes: int = INLINE_BYTES,
    ) -> type[ScrapeAdapter]:
        """This adapter on the worker's fleet, with `guard` on every request; `engines` are
        the ones offered (a fleet without browsers: "auto" and "http")."""
        unknown = sorted(set(engines) - set(ENGINES))
        if unknown:
            raise ValueError(f"engines: unknown {', '.join(unknown)}; use {', '.join(ENGINES)}")
        attrs = {
            "guard": guard,
            "uses_fleet": True,
            "engines": tuple(engines),
            "inline_bytes": inline_bytes,
        }
        return type("ScrapeAdapter", (cls,), {**attrs, "__doc__": cls.__doc__})

    def site_of(self, data: ScrapeInput) -> Site | None:
        """Each host is a site of its own; a request on a sticky session runs on the
        tenant's own identity (its 429s cool down that tenant's jobs of the site only)."""
        host = host_of(data.url)
        return None if host is None else Site(host, own_identity=data.session_id is not None)

    @classmethod
    def tier_of(cls, stored: Mapping[str, Any]) -> str | None:
        """The requested engine's queue; "auto" starts on plain HTTP, so it queues there."""
        engine = stored.get("engine")
        return engine if engine in ("browser", "stealth") else "http"

    def batch_item(self, data: ScrapeInput) -> bool:
        """Plain fetches only: a browser, a screenshot or a trace runs as its own job."""
        return data.engine in ("auto", "http") and not data.screenshot and not data.trace

    async def run(self, job: Job[ScrapeInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        told = await self._until_browser(job)
        await job.transition("FETCHING")
        while True:
            data = job.input.model_dump(mode="json")
            self._dumped = (data, job.input)  # `_fetch` takes this very dict as read already
            result: dict[str, Any] = await job.step("fetch", self._fetch, data)
            down = result.get(BROWSERS_DOWN)
            if down is None:
                return result
            # every browser of the pool failed to start: wait for one, visibly, then again
            await self._wait_for_browser(job, f"waiting for a browser: {down}", told=told)
            told = True

    @staticmethod
    def needs_browser(data: ScrapeInput) -> bool:
        """Whether the request can only run on a browser tier."""
        return data.engine in ("browser", "stealth") or data.screenshot or data.trace

    async def _until_browser(self, job: Job[ScrapeInput]) -> bool:
        """A request for a browser tier on a worker without a browser pool waits, visibly
        (status waiting, for "browser", with the reason on its timeline), looking again
        every `BROWSER_RECHECK_S`; it is never failed for it nor left silent. Whether it
        waited (the timeline said why)."""
        if not self.needs_browser(job.input):
            return False
        engine = job.input.engine if job.input.engine != "auto" else "browser"
        told = False
        while not await job.step("browser", self._browser_here, engine):
            await self._wait_for_browser(
                job,
                f"waiting for a browser: engine {engine!r} needs one and this worker has no "
                "browser pool (HTTP scrapes run on)",
                told=told,
            )
            told = True
        return told

    @staticmethod
    async def _wait_for_browser(job: Job[ScrapeInput], reason: str, *, told: bool) -> None:
        """Wait `BROWSER_RECHECK_S` for a browser: the first wait says why on the timeline
        (status waiting, for "browser"); later ones add no event."""
        if told:
            await job.sleep(BROWSER_RECHECK_S)
            return
        with contextlib.suppress(InputTimeoutError):
            await job.wait_for_input("browser", BROWSER_RECHECK_S, reason=reason)

    async def _browser_here(self, _sc: StepContext, engine: str) -> bool:
        return engine in self.engines

    def _read(self, data: dict[str, Any]) -> ScrapeInput:
        """The fetch step's input: validated, unless it is the very dict `run` just dumped
        from the job's validated input (not a copy: the same object, unchanged since), which
        it is read back as."""
        dumped = self._dumped
        if dumped is not None and dumped[0] is data and type(dumped[1]) is ScrapeInput:
            return dumped[1]
        return ScrapeInput.model_validate(data)

    async def _check(self, url: str) -> list[str]:
        """The SSRF guard as the engines call it: the addresses to connect to (the rungs pin
        them, on top of the runtime's own guard); a refusal is a permanent failure."""
        try:
            return await self.guard.check(url)
        except UrlRefusedError as exc:
            raise PermanentError(f"url refused by the SSRF guard: {exc}", url=url) from None

    async def _fetch(self, sc: StepContext, data: dict[str, Any]) -> dict[str, Any]:
        request = self._read(data)
        if request.engine not in self.engines:
            raise PermanentError(f"engine: {request.engine!r} is not available on this worker")
        if not self.uses_fleet:
            return await self._fetch_http(sc, request)
        try:
            result = await sc.fetch(
                request.url,
                engine=request.engine,
                wait_for=request.wait_for,
                extract=request.extract,
                screenshot=request.screenshot,
                session_id=request.session_id,
                proxy_tier=request.proxy_tier,
                country=request.proxy_country,
                respect_robots=request.respect_robots,
                guard=self._check,
                trace=request.trace,
            )
        except TransientError as exc:
            if not exc.details.get("browser_launch"):
                raise
            # no browser of the pool would start (all down): the job waits for one
            return {BROWSERS_DOWN: exc.message}
        output = result.summary()
        output["tier"] = result.rung
        body = result.html.encode()
        output["bytes"] = len(body)
        await self._deliverables(sc, output, result.html, result.final_url, body)
        if result.screenshot is not None:
            evidence_id = await sc.attach(
                "screenshot", result.screenshot, content_type="image/png", url=result.final_url
            )
            output["screenshot"] = {
                "evidence_id": evidence_id,
                "href": f"/v1/jobs/{sc.job_id}/evidence/{evidence_id}",
            }
            output.setdefault("results", {})["screenshot"] = {
                "evidence_id": evidence_id,
                "bytes": len(result.screenshot),
                "content_type": "image/png",
            }
        return output

    async def _deliverables(
        self,
        sc: StepContext,
        output: dict[str, Any],
        html: str,
        url: str,
        body: bytes | None = None,
    ) -> None:
        """The page body (`body`: `html` encoded, when the caller has it) and the extracted
        data: inline when small, else stored (evidence "html" / "extracted") and named
        under `results`."""
        limit = type(self).inline_bytes
        stored: dict[str, Any] = {}
        body = html.encode() if body is None else body
        if len(body) <= limit:
            output["html"] = html
        else:
            output["html"] = None
            evidence_id = await sc.attach("html", body, content_type="text/html", url=url)
            stored["html"] = {
                "evidence_id": evidence_id,
                "bytes": len(body),
                "content_type": "text/html",
            }
        extracted = output.get("extracted")
        data = json.dumps(extracted, separators=(",", ":")).encode() if extracted else b"{}"
        if len(data) > limit:
            output["extracted"] = None
            evidence_id = await sc.attach(
                "extracted", data, content_type="application/json", url=url
            )
            stored["extracted"] = {
                "evidence_id": evidence_id,
                "bytes": len(data),
                "content_type": "application/json",
            }
        if stored:
            output["results"] = stored

    async def _fetch_http(self, sc: StepContext, request: ScrapeInput) -> dict[str, Any]:
        await self._check(request.url)
        cls = type(self)
        if cls._politeness is None:
            cls._politeness = Politeness()
        if request.respect_robots and not await cls._politeness.allowed(
            request.url, respect=True, guard=self._check
        ):
            raise PermanentError(f"robots.txt disallows {request.url}", robots=True)
        async with (
            cls._politeness.slot(host_of(request.url) or request.url),  # per site
            guarded_client(self.guard, user_agent=USER_AGENT) as client,
        ):
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
        output: dict[str, Any] = {
            "url": request.url,
            "final_url": str(response.url),
            "status": response.status_code,
            "engine": "http",
            "tier": "http",
            "credits": HTTP_CREDITS,
            "title": title_of(html),
            "extracted": extract(html, request.extract),
            "bytes": len(response.content),
        }
        await self._deliverables(sc, output, html, str(response.url))
        return output
