"""Each API call as data (method, path, body, answer model), shared by both clients."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, SecretStr

from portwright.client._escalation_models import (
    BulkDecisionRequest,
    BulkDecisionResult,
    ClaimRequest,
    DecisionRequest,
    DecisionResult,
    Escalation,
    EscalationList,
    SelectorPatchRequest,
)
from portwright.client._models import (
    BatchRequest,
    BatchResponse,
    ControlRequest,
    CooldownRequest,
    Credential,
    CredentialList,
    CredentialPut,
    EventList,
    EvidenceList,
    InputRequest,
    Job,
    JobList,
    JobSubmit,
    Me,
    Portal,
    PortalList,
    ScrapeRequest,
    ScrapeSettings,
    Usage,
)
from portwright.sdk import dump_with_secrets

__all__ = ["Call", "Calls"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[M]):
    method: str
    path: str
    model: type[M] | None
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)


def _p(value: str) -> str:
    return quote(value, safe="")


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_unset=True)


def _plain_input(value: Any, depth: int = 0) -> Any:
    """A job input as sent: an input model's JSON with its `SecretStr` fields' real values
    (a plain dump would send pydantic's mask), or a mapping with any `SecretStr` revealed.
    The platform seals those fields at rest and answers them masked."""
    if isinstance(value, BaseModel):
        return dump_with_secrets(value, lambda secret: secret)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if depth < 64 and isinstance(value, Mapping):
        return {k: _plain_input(v, depth + 1) for k, v in value.items()}
    if depth < 64 and isinstance(value, list | tuple):
        return [_plain_input(v, depth + 1) for v in value]
    return value


class Calls:
    """Builders for every endpoint; `Client` and `AsyncClient` only send them."""

    @staticmethod
    def submit(
        adapter: str,
        input: Mapping[str, Any] | BaseModel,
        *,
        priority: int = 0,
        lock_key: str | None = None,
    ) -> Call[Job]:
        plain = _plain_input(input)
        body = JobSubmit(adapter=adapter, input=plain, priority=priority, lock_key=lock_key)
        return Call("POST", "/v1/jobs", Job, _dump(body))

    @staticmethod
    def get_job(job_id: str) -> Call[Job]:
        return Call("GET", f"/v1/jobs/{_p(job_id)}", Job)

    @staticmethod
    def list_jobs(**filters: Any) -> Call[JobList]:
        params = {k: v for k, v in filters.items() if v is not None}
        return Call("GET", "/v1/jobs", JobList, params=params)

    @staticmethod
    def events(job_id: str) -> Call[EventList]:
        return Call("GET", f"/v1/jobs/{_p(job_id)}/events", EventList)

    @staticmethod
    def provide_input(job_id: str, name: str, value: Any) -> Call[Job]:
        body = InputRequest(name=name, value=value)
        return Call("POST", f"/v1/jobs/{_p(job_id)}/input", Job, _dump(body))

    @staticmethod
    def control(job_id: str, action: str, reason: str = "") -> Call[Job]:
        body = _dump(ControlRequest(reason=reason)) if reason else None
        return Call("POST", f"/v1/jobs/{_p(job_id)}/{action}", Job, body)

    @staticmethod
    def portals() -> Call[PortalList]:
        return Call("GET", "/v1/portals", PortalList)

    @staticmethod
    def portal_control(name: str, action: str, reason: str = "") -> Call[Portal]:
        body = _dump(ControlRequest(reason=reason)) if reason else None
        return Call("POST", f"/v1/portals/{_p(name)}/{action}", Portal, body)

    @staticmethod
    def extend_cooldown(name: str, seconds: float, reason: str = "") -> Call[Portal]:
        body = _dump(CooldownRequest(seconds=seconds, reason=reason))
        return Call("POST", f"/v1/portals/{_p(name)}/cooldown", Portal, body)

    @staticmethod
    def end_cooldown(name: str, reason: str = "") -> Call[Portal]:
        body = _dump(ControlRequest(reason=reason)) if reason else None
        return Call("POST", f"/v1/portals/{_p(name)}/cooldown/end", Portal, body)

    @staticmethod
    def scrape(request: ScrapeRequest) -> Call[Job]:
        return Call("POST", "/v1/scrape", Job, _dump(request))

    @staticmethod
    def batch(request: BatchRequest) -> Call[BatchResponse]:
        return Call("POST", "/v1/batch", BatchResponse, _dump(request))

    @staticmethod
    def scrape_settings() -> Call[ScrapeSettings]:
        return Call("GET", "/v1/settings/scrape", ScrapeSettings)

    @staticmethod
    def put_scrape_settings(settings: ScrapeSettings) -> Call[ScrapeSettings]:
        return Call("PUT", "/v1/settings/scrape", ScrapeSettings, _dump(settings))

    @staticmethod
    def evidence(job_id: str) -> Call[EvidenceList]:
        return Call("GET", f"/v1/jobs/{_p(job_id)}/evidence", EvidenceList)

    @staticmethod
    def evidence_blob(job_id: str, evidence_id: str) -> Call[BaseModel]:
        return Call("GET", f"/v1/jobs/{_p(job_id)}/evidence/{_p(evidence_id)}", None)

    @staticmethod
    def trace(job_id: str) -> Call[BaseModel]:
        return Call("GET", f"/v1/jobs/{_p(job_id)}/trace", None)

    @staticmethod
    def usage(period: str | None = None) -> Call[Usage]:
        return Call("GET", "/v1/usage", Usage, params={"period": period} if period else {})

    @staticmethod
    def me() -> Call[Me]:
        return Call("GET", "/v1/me", Me)

    @staticmethod
    def put_credential(name: str, value: str) -> Call[Credential]:
        return Call(
            "PUT", f"/v1/credentials/{_p(name)}", Credential, _dump(CredentialPut(value=value))
        )

    @staticmethod
    def credentials() -> Call[CredentialList]:
        return Call("GET", "/v1/credentials", CredentialList)

    @staticmethod
    def delete_credential(name: str) -> Call[BaseModel]:
        return Call("DELETE", f"/v1/credentials/{_p(name)}", None)

    @staticmethod
    def escalations(**filters: Any) -> Call[EscalationList]:
        params = {k: v for k, v in filters.items() if v is not None}
        return Call("GET", "/v1/escalations", EscalationList, params=params)

    @staticmethod
    def get_escalation(escalation_id: str) -> Call[Escalation]:
        return Call("GET", f"/v1/escalations/{_p(escalation_id)}", Escalation)

    @staticmethod
    def claim_escalation(
        escalation_id: str, *, take_over: bool = False, reason: str = ""
    ) -> Call[Escalation]:
        body = _dump(ClaimRequest(take_over=take_over, reason=reason))
        return Call("POST", f"/v1/escalations/{_p(escalation_id)}/claim", Escalation, body)

    @staticmethod
    def decide(
        escalation_id: str, action: str, *, value: Any = None, reason: str = ""
    ) -> Call[DecisionResult]:
        body = DecisionRequest.model_validate({"action": action, "value": value, "reason": reason})
        path = f"/v1/escalations/{_p(escalation_id)}/decide"
        return Call("POST", path, DecisionResult, body.model_dump(mode="json"))

    @staticmethod
    def decide_many(action: str, *, reason: str = "", **filters: Any) -> Call[BulkDecisionResult]:
        body = BulkDecisionRequest.model_validate({"action": action, "reason": reason, **filters})
        payload = body.model_dump(mode="json", exclude_none=True)
        return Call("POST", "/v1/escalations/bulk", BulkDecisionResult, payload)

    @staticmethod
    def patch_selectors(
        escalation_id: str, selectors: Mapping[str, str], *, reason: str = ""
    ) -> Call[DecisionResult]:
        body = SelectorPatchRequest(selectors=dict(selectors), reason=reason)
        path = f"/v1/escalations/{_p(escalation_id)}/patch"
        return Call("POST", path, DecisionResult, body.model_dump(mode="json"))
