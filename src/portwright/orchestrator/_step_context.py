"""The context a step function receives: HTTP, browser, selectors, evidence, observations.

Every request a step makes passes the runtime's SSRF guard where it leaves, pinned
to the address the guard checked: `sc.http` through `GuardedTransport`, `sc.fetch`
through the ladder's guard (each rung), `sc.browser()` through a `GuardProxy` of the
step's own. An adapter cannot reach a private address its input names unless the
operator allowlisted it (`Settings.url_allowlist`); a refusal fails the step with a
PermanentError naming the URL and why.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import structlog

from portwright.engines.http import (
    CookieRow,
    classify_response,
    dump_cookies,
    new_client,
    summarize,
)
from portwright.observability import PROCESS
from portwright.resources import BlobSealer
from portwright.resources.ssrf import refusing
from portwright.sdk import ChallengeError, JobError, Logger, Page, PermanentError, SelectorMap

if TYPE_CHECKING:
    from playwright.async_api import Page as BrowserPage

    from portwright.engines.browser import Masker, RouteGuard, StepBrowser
    from portwright.engines.ladder import FetchResult, GuardProxy
    from portwright.orchestrator._runtime import Runtime
    from portwright.store import JobRecord

__all__ = ["CREDENTIALS_NOTE", "StepContextImpl"]

CREDENTIALS_NOTE = "credentials_used"  # the names of the stored credentials a job opened


def _origin(url: str) -> tuple[str, int | None]:
    """A URL's host and port (the default port made explicit), to match a refusal."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    return (parts.hostname or "", port)


class StepContextImpl:
    """One attempt of one step. Created fresh per attempt; closed afterwards."""

    def __init__(
        self,
        runtime: Runtime,
        job: JobRecord,
        *,
        step: str,
        attempt: int,
        cookies: list[CookieRow],
        selectors: SelectorMap,
    ) -> None:
        self._rt = runtime
        self._job = job
        self._step = step
        self._attempt = attempt
        self._selectors = selectors
        self._proxy = runtime.identity.proxy_for(job.id, job.portal)
        self._cookies = cookies
        self._client: httpx.AsyncClient | None = None  # created on first use
        self._logger: Logger | None = None  # bound on first use (most steps never log)
        self.evidence_ids: list[str] = []
        self._browser: StepBrowser | None = None  # the fleet's browser side, on first use
        self._browser_guard: GuardProxy | None = None  # the SSRF guard in front of it
        self._route_guard: RouteGuard | None = None  # the same, for a remote (CDP) browser
        self._watched: set[Any] = set()
        self._refused: JobError | None = None  # a main-frame navigation the guard refused
        self._secrets_used: list[str] = []  # masked in this step's evidence
        self._credentials_noted: set[str] = set()
        self._http_log: list[dict[str, Any]] = []

    @property
    def job_id(self) -> str:
        return self._job.id

    @property
    def tenant_id(self) -> str:
        return self._job.tenant_id

    @property
    def step(self) -> str:
        return self._step

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def http(self) -> httpx.AsyncClient:
        if self._client is None:
            hook = self._log_response if self._rt.fleet is not None else None
            self._client = new_client(
                cookies=self._cookies,
                proxy=self._proxy,
                on_response=hook,
                guard=refusing(self._rt.guard),
            )
        return self._client

    @property
    def selectors(self) -> SelectorMap:
        return self._selectors

    @property
    def log(self) -> Logger:
        if self._logger is None:
            job = self._job
            self._logger = structlog.get_logger("portwright.step").bind(
                job_id=job.id,
                workflow_id=job.id,
                tenant_id=job.tenant_id,
                adapter=job.adapter,
                step=self._step,
                attempt=self._attempt,
            )
        return self._logger

    @property
    def proxy(self) -> str | None:
        return self._proxy

    def check(self, response: httpx.Response) -> httpx.Response:
        classify_response(response)
        return response

    def page(self, response: httpx.Response) -> Page:
        classify_response(response)
        return Page(response.text, self._selectors, url=str(response.url))

    async def observe(self, kind: str, subject: str, value: Mapping[str, Any]) -> None:
        await asyncio.to_thread(
            self._rt.store.intel.observe,
            portal=self._job.portal,
            kind=kind,
            subject=subject,
            value=dict(value),
            tenant_id=self._job.tenant_id,
            job_id=self._job.id,
        )

    async def attach(self, kind: str, data: bytes | str, *, content_type: str, **meta: Any) -> str:
        evidence_id = await asyncio.to_thread(
            self._rt.attach_evidence,
            self._job,
            step=self._step,
            kind=kind,
            data=data,
            content_type=content_type,
            meta=meta,
        )
        self.evidence_ids.append(evidence_id)
        return evidence_id

    async def solve_captcha(self, *, sitekey: str, url: str) -> str:
        if self._rt.captcha is None:
            raise ChallengeError(f"captcha on {url} and no solver is configured")
        self.log.info("solving captcha", sitekey=sitekey)
        try:
            answer = await self._rt.captcha.solve(
                sitekey=sitekey, url=url, tenant_id=self._job.tenant_id
            )
        except ChallengeError:
            PROCESS.captcha(self._job.portal, solved=False)
            raise
        PROCESS.captcha(self._job.portal, solved=True)
        return answer

    async def remember(self, key: str, value: Any) -> None:
        await asyncio.to_thread(self._rt.store.jobs.remember, self._job.id, key, value)

    async def recall(self, key: str) -> Any:
        return await asyncio.to_thread(self._rt.store.jobs.recall, self._job.id, key)

    async def intake(self, form: str) -> Mapping[str, Any] | None:
        return await asyncio.to_thread(self._rt.store.intake.get, self._job.tenant_id, form)

    async def secret(self, name: str) -> str:
        value = await asyncio.to_thread(self._rt.secrets.get, self._job.tenant_id, name)
        self._secrets_used.append(value)
        used = (self._job.notes or {}).get(CREDENTIALS_NOTE)
        if name not in self._credentials_noted and not (isinstance(used, list) and name in used):
            # The job's page links the credentials it used (names only, never values).
            await asyncio.to_thread(
                self._rt.store.jobs.remember_once, self._job.id, CREDENTIALS_NOTE, name
            )
        self._credentials_noted.add(name)
        return value

    # -- the browser fleet (portwright.engines) ---------------------------------------------

    async def browser(self, *, hardened: bool = False, profile: str | None = None) -> BrowserPage:
        fleet = self._rt.fleet
        if fleet is None or fleet.browsers is None:
            raise PermanentError(
                "this job needs a browser and none is installed on this worker (install "
                "Chromium or set PORTWRIGHT_CHROMIUM to its path)"
            )
        if self._browser is None:
            from portwright.engines.browser import GuardedIdentity, RouteGuard
            from portwright.engines.ladder import GuardProxy

            job = self._job
            check = refusing(self._rt.guard)
            upstream = fleet.identity(job.id, job.portal, self._proxy)
            guard = GuardProxy(check, upstream)
            self._browser_guard = await guard.__aenter__()
            self._route_guard = RouteGuard(check)
            self._browser = fleet.step_browser(
                job_id=job.id,
                seed=job.id,
                # a local browser goes through the loopback guard proxy; a remote (CDP)
                # one through the identity itself, each request checked by the route guard
                proxy=GuardedIdentity(guard.proxy, upstream, self._route_guard),
                sink=self,
                blobs=self._rt.blobs,
                prefix=f"{job.tenant_id}/{job.id}",
                masker=self._masker,
                on_new_trace=self._trace_created,
                sealer=self._rt.secrets if isinstance(self._rt.secrets, BlobSealer) else None,
            )
        page = await self._browser.page(hardened=hardened, profile=profile)
        if page not in self._watched:  # a refused navigation is why the step fails
            self._watched.add(page)
            page.on("response", self._navigated)
            page.on("requestfailed", self._navigation_failed)
        return page

    def _navigated(self, response: Any) -> None:
        if response.status == 403:
            self._navigation_refused(response.request)

    def _navigation_failed(self, request: Any) -> None:
        self._navigation_refused(request)

    def _navigation_refused(self, request: Any) -> None:
        """Note the guard's refusal when it was one of the page's main-frame navigations
        (not a subresource, not Chromium's own background traffic)."""
        guard = self._browser_guard
        if guard is None or self._refused is not None:
            return
        route = self._route_guard
        refusals = [*guard.refused, *(route.refused if route is not None else ())]
        try:
            if not (request.is_navigation_request() and request.frame.parent_frame is None):
                return
        except Exception:  # noqa: BLE001 - a frame already gone: not ours to judge
            return
        where = _origin(request.url)
        self._refused = next(
            (r for r in refusals if _origin(str(r.details.get("url", ""))) == where), None
        )

    async def fetch(self, url: str, **options: Any) -> FetchResult:
        fleet = self._rt.fleet
        if fleet is None:
            raise PermanentError(
                "this worker cannot fetch web pages: it was started without the scraping engines"
            )
        return await fleet.ladder.fetch(
            url, tenant_id=self._job.tenant_id, job_id=self._job.id, evidence=self, **options
        )

    @property
    def refused(self) -> JobError | None:
        """The SSRF guard's refusal of a navigation of the step's browser page, if any: the
        step failed for it, whatever the page then showed the adapter. On a remote browser
        a refused redirect hop (seen only after it was sent; its page is closed) counts too."""
        if self._refused is None and self._route_guard is not None:
            hops = self._route_guard.refused_hops
            if hops:
                return hops[0]
        return self._refused

    def mask(self, text: str) -> str:
        """`text` with every secret this step fetched masked (error messages, logs)."""
        return self._masker().text(text)

    def _masker(self) -> Masker:
        from portwright.engines.browser import Masker

        return Masker.of(self._secrets_used)

    def _trace_created(self, key: str, size: int) -> None:
        self.evidence_ids.append(
            self._rt.store.jobs.add_evidence(
                job_id=self._job.id,
                tenant_id=self._job.tenant_id,
                step=self._step,
                kind="trace",
                blob_key=key,
                content_type="application/zip",
                size=size,
                meta={"scope": "job"},
            )
        )

    async def _log_response(self, response: httpx.Response) -> None:
        self._http_log.append(summarize(response))

    def cookies(self) -> list[CookieRow]:
        return self._cookies if self._client is None else dump_cookies(self._client)

    async def aclose(self) -> None:
        try:
            if self._browser is not None:
                await self._browser.aclose()
            if self._browser_guard is not None:
                await self._browser_guard.__aexit__(None, None, None)
            if self._route_guard is not None:
                await self._route_guard.aclose()
            if self._http_log:
                log = json.dumps(self._http_log)
                await self.attach("http-log", log, content_type="application/json")
        finally:
            if self._client is not None:
                await self._client.aclose()
