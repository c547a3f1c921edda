"""The context a step function receives: HTTP, browser, selectors, evidence, observations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
from portwright.sdk import ChallengeError, Logger, Page, PermanentError, SelectorMap

if TYPE_CHECKING:
    from playwright.async_api import Page as BrowserPage

    from portwright.engines.browser import Masker, StepBrowser
    from portwright.engines.ladder import FetchResult
    from portwright.orchestrator._runtime import Runtime
    from portwright.store import JobRecord

__all__ = ["StepContextImpl"]


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
        self._log: Logger = structlog.get_logger("portwright.step").bind(
            job_id=job.id,
            workflow_id=job.id,
            tenant_id=job.tenant_id,
            adapter=job.adapter,
            step=step,
            attempt=attempt,
        )
        self.evidence_ids: list[str] = []
        self._browser: StepBrowser | None = None  # the fleet's browser side, on first use
        self._secrets_used: list[str] = []  # masked in this step's evidence
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
            self._client = new_client(cookies=self._cookies, proxy=self._proxy, on_response=hook)
        return self._client

    @property
    def selectors(self) -> SelectorMap:
        return self._selectors

    @property
    def log(self) -> Logger:
        return self._log

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
        self._log.info("solving captcha", sitekey=sitekey)
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

    async def secret(self, name: str) -> str:
        value = await asyncio.to_thread(self._rt.secrets.get, self._job.tenant_id, name)
        self._secrets_used.append(value)
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
            job = self._job
            self._browser = fleet.step_browser(
                job_id=job.id,
                seed=job.id,
                proxy=fleet.identity(job.id, job.portal, self._proxy),
                sink=self,
                blobs=self._rt.blobs,
                prefix=f"{job.tenant_id}/{job.id}",
                masker=self._masker,
                on_new_trace=self._trace_created,
                sealer=self._rt.secrets if isinstance(self._rt.secrets, BlobSealer) else None,
            )
        return await self._browser.page(hardened=hardened, profile=profile)

    async def fetch(self, url: str, **options: Any) -> FetchResult:
        fleet = self._rt.fleet
        if fleet is None:
            raise PermanentError(
                "this worker cannot fetch web pages: it was started without the scraping engines"
            )
        return await fleet.ladder.fetch(
            url, tenant_id=self._job.tenant_id, job_id=self._job.id, evidence=self, **options
        )

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
            if self._http_log:
                log = json.dumps(self._http_log)
                await self.attach("http-log", log, content_type="application/json")
        finally:
            if self._client is not None:
                await self._client.aclose()
