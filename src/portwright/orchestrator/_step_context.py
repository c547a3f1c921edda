"""The context a step function receives: HTTP session, selectors, evidence, observations."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from portwright.engines.http import CookieRow, classify_response, dump_cookies, new_client
from portwright.sdk import ChallengeError, Logger, Page, SelectorMap

if TYPE_CHECKING:
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
        self._client = new_client(cookies=cookies, proxy=self._proxy)
        self._log: Logger = structlog.get_logger("portwright.step").bind(
            job_id=job.id,
            workflow_id=job.id,
            tenant_id=job.tenant_id,
            adapter=job.adapter,
            step=step,
            attempt=attempt,
        )
        self.evidence_ids: list[str] = []

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
        return await self._rt.captcha.solve(sitekey=sitekey, url=url)

    async def secret(self, name: str) -> str:
        return await asyncio.to_thread(self._rt.secrets.get, self._job.tenant_id, name)

    def cookies(self) -> list[CookieRow]:
        return dump_cookies(self._client)

    async def aclose(self) -> None:
        await self._client.aclose()
