"""`Client` and `AsyncClient`: typed wrappers over httpx for Portwright's public API.

    with Client("http://127.0.0.1:8000", api_key="pw_…") as pw:
        job = pw.submit("echo", {"url": "…", "key": "k"}, idempotency_key="order-17")
        print(pw.get_job(job.id).state)

Every method returns a wire model (`portwright.client._models`) or raises an
`APIError` subclass. POST methods take `idempotency_key=`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from portwright.client._calls import Call, Calls
from portwright.client._errors import raise_for_answer
from portwright.client._escalation_models import (
    BulkDecisionResult,
    DecisionResult,
    Escalation,
    EscalationList,
)
from portwright.client._models import (
    BatchRequest,
    BatchResponse,
    Credential,
    CredentialList,
    EventList,
    EvidenceList,
    Job,
    JobList,
    Me,
    Portal,
    PortalList,
    ScrapeRequest,
    ScrapeSettings,
    Usage,
)

__all__ = ["AsyncClient", "Client"]

M = TypeVar("M", bound=BaseModel)
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _request_kw(call: Call[Any], idempotency_key: str | None) -> dict[str, Any]:
    headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
    kw: dict[str, Any] = {"params": call.params, "headers": headers}
    if call.json is not None:
        kw["json"] = call.json
    return kw


def _answer(call: Call[M], response: httpx.Response) -> M:
    raise_for_answer(response)
    assert call.model is not None
    return call.model.model_validate_json(response.content)


class Client:
    """The synchronous client."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    def send(self, call: Call[M], *, idempotency_key: str | None = None) -> M:
        response = self.http.request(call.method, call.path, **_request_kw(call, idempotency_key))
        return _answer(call, response)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- jobs ----------------------------------------------------------------------------

    def submit(
        self,
        adapter: str,
        input: Mapping[str, Any] | BaseModel,
        *,
        priority: int = 0,
        lock_key: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        call = Calls.submit(adapter, input, priority=priority, lock_key=lock_key)
        return self.send(call, idempotency_key=idempotency_key)

    def get_job(self, job_id: str) -> Job:
        return self.send(Calls.get_job(job_id))

    def list_jobs(self, **filters: Any) -> JobList:
        return self.send(Calls.list_jobs(**filters))

    def events(self, job_id: str) -> EventList:
        return self.send(Calls.events(job_id))

    def provide_input(
        self, job_id: str, name: str, value: Any, *, idempotency_key: str | None = None
    ) -> Job:
        return self.send(Calls.provide_input(job_id, name, value), idempotency_key=idempotency_key)

    def cancel(self, job_id: str, reason: str = "") -> Job:
        return self.send(Calls.control(job_id, "cancel", reason))

    def pause(self, job_id: str, reason: str = "") -> Job:
        return self.send(Calls.control(job_id, "pause", reason))

    def resume(self, job_id: str, reason: str = "") -> Job:
        return self.send(Calls.control(job_id, "resume", reason))

    def retry(self, job_id: str, reason: str = "") -> Job:
        return self.send(Calls.control(job_id, "retry", reason))

    # -- portals, scraping, account ------------------------------------------------------

    def portals(self) -> PortalList:
        return self.send(Calls.portals())

    def pause_portal(self, name: str, reason: str = "") -> Portal:
        return self.send(Calls.portal_control(name, "pause", reason))

    def resume_portal(self, name: str, reason: str = "") -> Portal:
        return self.send(Calls.portal_control(name, "resume", reason))

    def extend_cooldown(self, name: str, seconds: float, reason: str = "") -> Portal:
        """Cool a portal down for `seconds` from now (operator scope; audited)."""
        return self.send(Calls.extend_cooldown(name, seconds, reason))

    def end_cooldown(self, name: str, reason: str = "") -> Portal:
        """End a portal's cooldown now: its jobs go on within 10 s (admin scope; audited)."""
        return self.send(Calls.end_cooldown(name, reason))

    def scrape(self, request: ScrapeRequest, *, idempotency_key: str | None = None) -> Job:
        return self.send(Calls.scrape(request), idempotency_key=idempotency_key)

    def batch(self, request: BatchRequest, *, idempotency_key: str | None = None) -> BatchResponse:
        return self.send(Calls.batch(request), idempotency_key=idempotency_key)

    def scrape_settings(self) -> ScrapeSettings:
        return self.send(Calls.scrape_settings())

    def set_scrape_settings(self, *, respect_robots: bool) -> ScrapeSettings:
        """Turn robots.txt respect on or off for your scrapes (audited)."""
        settings = ScrapeSettings(respect_robots=respect_robots)
        return self.send(Calls.put_scrape_settings(settings))

    def evidence(self, job_id: str) -> EvidenceList:
        return self.send(Calls.evidence(job_id))

    def download_evidence(self, job_id: str, evidence_id: str) -> bytes:
        return self._bytes(Calls.evidence_blob(job_id, evidence_id))

    def trace(self, job_id: str) -> bytes:
        """The job's Playwright trace (a zip for `playwright show-trace`); 404 when none."""
        return self._bytes(Calls.trace(job_id))

    def _bytes(self, call: Call[BaseModel]) -> bytes:
        response = self.http.request(call.method, call.path)
        raise_for_answer(response)
        return response.content

    def usage(self, period: str | None = None) -> Usage:
        return self.send(Calls.usage(period))

    def me(self) -> Me:
        return self.send(Calls.me())

    def put_credential(self, name: str, value: str) -> Credential:
        return self.send(Calls.put_credential(name, value))

    def credentials(self) -> CredentialList:
        return self.send(Calls.credentials())

    def delete_credential(self, name: str) -> None:
        call = Calls.delete_credential(name)
        raise_for_answer(self.http.request(call.method, call.path))

    # -- escalations ---------------------------------------------------------------------

    def escalations(self, **filters: Any) -> EscalationList:
        """Filters: state, kind, portal, selector_key, job_id, cursor, limit."""
        return self.send(Calls.escalations(**filters))

    def get_escalation(self, escalation_id: str) -> Escalation:
        return self.send(Calls.get_escalation(escalation_id))

    def claim_escalation(
        self, escalation_id: str, *, take_over: bool = False, reason: str = ""
    ) -> Escalation:
        return self.send(Calls.claim_escalation(escalation_id, take_over=take_over, reason=reason))

    def decide(
        self,
        escalation_id: str,
        action: str,
        *,
        value: Any = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> DecisionResult:
        """resume (with `value`), retry, fail, cancel or acknowledge; `ConflictError` when
        someone decided differently first."""
        call = Calls.decide(escalation_id, action, value=value, reason=reason)
        return self.send(call, idempotency_key=idempotency_key)

    def decide_many(
        self,
        action: str,
        *,
        reason: str = "",
        idempotency_key: str | None = None,
        **filters: Any,
    ) -> BulkDecisionResult:
        """retry, fail or cancel every undecided escalation the filters select (portal,
        kind, selector_key, state), each audited; 422 when they select too many."""
        call = Calls.decide_many(action, reason=reason, **filters)
        return self.send(call, idempotency_key=idempotency_key)

    def patch_selectors(
        self,
        escalation_id: str,
        selectors: Mapping[str, str],
        *,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> DecisionResult:
        """New selectors; this job and every other parked on the same selector retry."""
        call = Calls.patch_selectors(escalation_id, selectors, reason=reason)
        return self.send(call, idempotency_key=idempotency_key)


class AsyncClient:
    """The asynchronous client: the same methods, awaited."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers=_headers(api_key),
            timeout=timeout,
            transport=transport,
            limits=limits or httpx.Limits(max_connections=100),
        )

    async def send(self, call: Call[M], *, idempotency_key: str | None = None) -> M:
        kw = _request_kw(call, idempotency_key)
        response = await self.http.request(call.method, call.path, **kw)
        return _answer(call, response)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- jobs ----------------------------------------------------------------------------

    async def submit(
        self,
        adapter: str,
        input: Mapping[str, Any] | BaseModel,
        *,
        priority: int = 0,
        lock_key: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        call = Calls.submit(adapter, input, priority=priority, lock_key=lock_key)
        return await self.send(call, idempotency_key=idempotency_key)

    async def get_job(self, job_id: str) -> Job:
        return await self.send(Calls.get_job(job_id))

    async def list_jobs(self, **filters: Any) -> JobList:
        return await self.send(Calls.list_jobs(**filters))

    async def events(self, job_id: str) -> EventList:
        return await self.send(Calls.events(job_id))

    async def provide_input(
        self, job_id: str, name: str, value: Any, *, idempotency_key: str | None = None
    ) -> Job:
        call = Calls.provide_input(job_id, name, value)
        return await self.send(call, idempotency_key=idempotency_key)

    async def cancel(self, job_id: str, reason: str = "") -> Job:
        return await self.send(Calls.control(job_id, "cancel", reason))

    async def pause(self, job_id: str, reason: str = "") -> Job:
        return await self.send(Calls.control(job_id, "pause", reason))

    async def resume(self, job_id: str, reason: str = "") -> Job:
        return await self.send(Calls.control(job_id, "resume", reason))

    async def retry(self, job_id: str, reason: str = "") -> Job:
        return await self.send(Calls.control(job_id, "retry", reason))

    # -- portals, scraping, account ------------------------------------------------------

    async def portals(self) -> PortalList:
        return await self.send(Calls.portals())

    async def pause_portal(self, name: str, reason: str = "") -> Portal:
        return await self.send(Calls.portal_control(name, "pause", reason))

    async def resume_portal(self, name: str, reason: str = "") -> Portal:
        return await self.send(Calls.portal_control(name, "resume", reason))

    async def extend_cooldown(self, name: str, seconds: float, reason: str = "") -> Portal:
        """Cool a portal down for `seconds` from now (operator scope; audited)."""
        return await self.send(Calls.extend_cooldown(name, seconds, reason))

    async def end_cooldown(self, name: str, reason: str = "") -> Portal:
        """End a portal's cooldown now: its jobs go on within 10 s (admin scope; audited)."""
        return await self.send(Calls.end_cooldown(name, reason))

    async def scrape(self, request: ScrapeRequest, *, idempotency_key: str | None = None) -> Job:
        return await self.send(Calls.scrape(request), idempotency_key=idempotency_key)

    async def batch(
        self, request: BatchRequest, *, idempotency_key: str | None = None
    ) -> BatchResponse:
        return await self.send(Calls.batch(request), idempotency_key=idempotency_key)

    async def scrape_settings(self) -> ScrapeSettings:
        return await self.send(Calls.scrape_settings())

    async def set_scrape_settings(self, *, respect_robots: bool) -> ScrapeSettings:
        """Turn robots.txt respect on or off for your scrapes (audited)."""
        settings = ScrapeSettings(respect_robots=respect_robots)
        return await self.send(Calls.put_scrape_settings(settings))

    async def evidence(self, job_id: str) -> EvidenceList:
        return await self.send(Calls.evidence(job_id))

    async def download_evidence(self, job_id: str, evidence_id: str) -> bytes:
        return await self._bytes(Calls.evidence_blob(job_id, evidence_id))

    async def trace(self, job_id: str) -> bytes:
        """The job's Playwright trace (a zip for `playwright show-trace`); 404 when none."""
        return await self._bytes(Calls.trace(job_id))

    async def _bytes(self, call: Call[BaseModel]) -> bytes:
        response = await self.http.request(call.method, call.path)
        raise_for_answer(response)
        return response.content

    async def usage(self, period: str | None = None) -> Usage:
        return await self.send(Calls.usage(period))

    async def me(self) -> Me:
        return await self.send(Calls.me())

    async def put_credential(self, name: str, value: str) -> Credential:
        return await self.send(Calls.put_credential(name, value))

    async def credentials(self) -> CredentialList:
        return await self.send(Calls.credentials())

    async def delete_credential(self, name: str) -> None:
        call = Calls.delete_credential(name)
        raise_for_answer(await self.http.request(call.method, call.path))

    # -- escalations ---------------------------------------------------------------------

    async def escalations(self, **filters: Any) -> EscalationList:
        """Filters: state, kind, portal, selector_key, job_id, cursor, limit."""
        return await self.send(Calls.escalations(**filters))

    async def get_escalation(self, escalation_id: str) -> Escalation:
        return await self.send(Calls.get_escalation(escalation_id))

    async def claim_escalation(
        self, escalation_id: str, *, take_over: bool = False, reason: str = ""
    ) -> Escalation:
        call = Calls.claim_escalation(escalation_id, take_over=take_over, reason=reason)
        return await self.send(call)

    async def decide(
        self,
        escalation_id: str,
        action: str,
        *,
        value: Any = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> DecisionResult:
        """resume (with `value`), retry, fail, cancel or acknowledge; `ConflictError` when
        someone decided differently first."""
        call = Calls.decide(escalation_id, action, value=value, reason=reason)
        return await self.send(call, idempotency_key=idempotency_key)

    async def decide_many(
        self,
        action: str,
        *,
        reason: str = "",
        idempotency_key: str | None = None,
        **filters: Any,
    ) -> BulkDecisionResult:
        """retry, fail or cancel every undecided escalation the filters select (portal,
        kind, selector_key, state), each audited; 422 when they select too many."""
        call = Calls.decide_many(action, reason=reason, **filters)
        return await self.send(call, idempotency_key=idempotency_key)

    async def patch_selectors(
        self,
        escalation_id: str,
        selectors: Mapping[str, str],
        *,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> DecisionResult:
        """New selectors; this job and every other parked on the same selector retry."""
        call = Calls.patch_selectors(escalation_id, selectors, reason=reason)
        return await self.send(call, idempotency_key=idempotency_key)
