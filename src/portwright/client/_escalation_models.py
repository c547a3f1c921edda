"""The wire schemas of `/v1/escalations` (shared by the gateway and the typed client)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

__all__ = [
    "BulkDecisionRequest",
    "BulkDecisionResult",
    "BulkSkipped",
    "ClaimRequest",
    "DecisionRequest",
    "DecisionResult",
    "Escalation",
    "EscalationList",
    "SelectorPatchRequest",
]

MAX_SELECTORS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Escalation(BaseModel):
    """Something only a person can decide. `status`: open, claimed (by `claimed_by`),
    decided (by `decided_by`, the job applies it next) or resolved."""

    id: str
    job_id: str | None = Field(
        description="the waiting job; null for a portal-level escalation (a probe found it)"
    )
    tenant_id: str
    portal: str
    kind: str
    status: str
    step: str
    reason: str
    details: dict[str, Any]
    decision: dict[str, Any] | None = None
    created_at: float
    claimed_by: str | None = None
    claimed_at: float | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    actions: list[str] = Field(
        default_factory=list, description="the decisions that apply now (empty once decided)"
    )
    options: list[list[str]] = Field(
        default_factory=list, description="the known answers as [value, label] pairs, if any"
    )
    links: dict[str, str] = Field(default_factory=dict, description="job, events, evidence")


class EscalationList(BaseModel):
    data: list[Escalation]
    total: int = Field(description="how many escalations match the filters, on every page")
    next_cursor: str | None = None


class ClaimRequest(_Strict):
    take_over: bool = Field(False, description="move another operator's claim to you")
    reason: str = Field("", max_length=500)


class DecisionRequest(_Strict):
    action: Literal["resume", "retry", "fail", "cancel", "acknowledge"]
    value: JsonValue = Field(None, description="the answer, for `resume`")
    reason: str = Field("", max_length=500)


class SelectorPatchRequest(_Strict):
    """New selectors for the escalation's adapter: a new selector-map version; the job
    retries, and so does every other job of the portal parked on the same selector."""

    selectors: dict[str, str] = Field(min_length=1)
    reason: str = Field("", max_length=500)

    @field_validator("selectors")
    @classmethod
    def _bounded(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_SELECTORS:
            raise ValueError(f"at most {MAX_SELECTORS} selectors at once")
        for key, selector in value.items():
            if not key.strip() or len(key) > 100:
                raise ValueError(f"selector name {key[:100]!r} is empty or too long")
            if not selector.strip() or len(selector) > 1000:
                raise ValueError(f"the selector for {key!r} is empty or longer than 1000")
        return value


class DecisionResult(BaseModel):
    escalation: Escalation
    selector_version: int | None = None
    also_retried: list[str] = Field(
        default_factory=list, description="other escalations on the same selector, retried"
    )
    skipped: list[str] = Field(
        default_factory=list, description="parked on the same selector but claimed by another"
    )


class BulkDecisionRequest(_Strict):
    """One decision on every undecided escalation the filters select (at least one of
    portal, kind, selector_key), each recorded and audited on its own."""

    action: Literal["retry", "fail", "cancel"]
    portal: str | None = Field(None, min_length=1, max_length=100)
    kind: str | None = Field(None, min_length=1, max_length=32)
    selector_key: str | None = Field(None, min_length=1, max_length=100)
    state: Literal["open", "claimed"] | None = Field(
        None, description="only open, or only claimed (by you) escalations; default both"
    )
    reason: str = Field("", max_length=500)


class BulkSkipped(BaseModel):
    id: str
    reason: str


class BulkDecisionResult(BaseModel):
    matched: int = Field(description="undecided escalations the filters selected")
    decided: list[Escalation]
    skipped: list[BulkSkipped] = Field(
        default_factory=list,
        description="decided by someone else meanwhile, claimed by another operator, or of a "
        "kind the action does not apply to",
    )
