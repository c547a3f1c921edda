"""The wire schemas of Portwright's public API, shared by the gateway and the typed client."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from portwright.sdk import ExtractRule

__all__ = [
    "BatchRequest",
    "BatchResponse",
    "ControlRequest",
    "CooldownRequest",
    "Credential",
    "CredentialList",
    "CredentialPut",
    "ErrorBody",
    "Event",
    "EventList",
    "Evidence",
    "EvidenceList",
    "ExtractRule",
    "FieldProblem",
    "HookAck",
    "InputRequest",
    "Job",
    "JobList",
    "JobSubmit",
    "Me",
    "Portal",
    "PortalList",
    "ScrapeRequest",
    "ScrapeSettings",
    "Usage",
    "UsageLine",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldProblem(BaseModel):
    """One field and what is wrong with it."""

    field: str
    problem: str


class ErrorBody(BaseModel):
    """Every error answer: a stable code, a message naming the problem, and details."""

    code: str
    message: str
    fields: list[FieldProblem] = Field(default_factory=list)
    known: list[str] | None = None


# -- jobs ----------------------------------------------------------------------------------


class JobSubmit(_Strict):
    adapter: str = Field(min_length=1, max_length=100)
    input: dict[str, JsonValue]
    priority: int = Field(0, ge=0, le=1000)
    lock_key: str | None = Field(None, min_length=1, max_length=200)


class Job(BaseModel):
    id: str
    adapter: str
    adapter_version: str
    portal: str
    state: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    error_class: str | None = None
    reason: str | None = None
    waiting_for: str | None = None
    lock_key: str | None = None
    priority: int = 0
    paused: bool = False
    attempts: int = 0
    created_at: float
    updated_at: float
    finished_at: float | None = None
    parent_id: str | None = Field(None, description="the fan-out job this item belongs to")
    item_key: str | None = Field(None, description="this item's key within its parent")
    retry_of: str | None = None


class JobList(BaseModel):
    data: list[Job]
    next_cursor: str | None = None


class Event(BaseModel):
    seq: int
    kind: str
    actor: str
    from_state: str | None
    to_state: str
    reason: str
    meta: dict[str, Any]
    created_at: float


class EventList(BaseModel):
    data: list[Event]


class InputRequest(_Strict):
    name: str = Field(min_length=1, max_length=100)
    value: JsonValue = None


class ControlRequest(_Strict):
    reason: str = Field("", max_length=500)


# -- portals -------------------------------------------------------------------------------


class CooldownRequest(_Strict):
    seconds: float = Field(
        gt=0,
        le=86_400,
        description="cool the portal down for this long from now (at most a day); "
        "a cooldown that already lasts longer is left as it is",
    )
    reason: str = Field("", max_length=500)


class Portal(BaseModel):
    name: str
    max_concurrency: int
    paused: bool
    paused_reason: str | None
    cooldown_until: float | None
    cooldown_reason: str | None
    degraded_since: float | None
    degraded_reason: str | None


class PortalList(BaseModel):
    data: list[Portal]


# -- scraping ------------------------------------------------------------------------------


class ScrapeRequest(_Strict):
    url: str = Field(min_length=1, max_length=2048, description="http(s) URL to fetch")
    engine: Literal["auto", "http", "browser", "stealth"] = "auto"
    wait_for: str | None = Field(None, max_length=500, description="selector to wait for")
    extract: dict[str, ExtractRule] = Field(default_factory=dict, max_length=50)
    screenshot: bool = False
    trace: bool = Field(
        False, description="keep a Playwright trace of browser tiers (GET /v1/jobs/{id}/trace)"
    )
    session_id: str | None = Field(None, max_length=100)
    proxy_tier: Literal["datacenter", "residential", "mobile"] | None = None
    proxy_country: str | None = Field(None, pattern=r"^[A-Za-z]{2}$")
    webhook: str | None = Field(
        None,
        max_length=2048,
        description="one of your webhook endpoints' URLs: gets a signed job.result event "
        "when the job ends",
    )
    mode: Literal["sync", "async"] = "async"
    timeout_s: float = Field(30.0, gt=0, le=120, description="sync mode: wait at most this long")


class ScrapeSettings(_Strict):
    """A tenant's scrape settings."""

    respect_robots: bool = Field(
        True, description="refuse URLs the site's robots.txt disallows (on by default)"
    )


class BatchRequest(_Strict):
    items: list[ScrapeRequest] = Field(min_length=1, max_length=1000)
    webhook: str | None = Field(
        None,
        max_length=2048,
        description="one of your webhook endpoints' URLs: each item's result (items without "
        "their own webhook), then one batch.completed event with the counts",
    )


class BatchResponse(BaseModel):
    batch_id: str
    jobs: list[Job]


class Evidence(BaseModel):
    """One piece of a job's evidence (a screenshot, the DOM, a step log, a trace)."""

    id: str
    job_id: str
    step: str
    kind: str
    content_type: str
    size: int
    meta: dict[str, Any]
    created_at: float
    href: str = Field(description="where to download it (same API key)")


class EvidenceList(BaseModel):
    data: list[Evidence]


# -- account -------------------------------------------------------------------------------


class UsageLine(BaseModel):
    requests: int
    credits: int


class Usage(BaseModel):
    tenant_id: str
    plan: str
    period: str
    jobs: int
    jobs_limit: int
    credits: int
    credits_limit: int
    by_tier: dict[str, UsageLine]
    by_key: dict[str, UsageLine]


class Me(BaseModel):
    tenant_id: str
    tenant: str
    plan: str
    key_prefix: str
    scopes: list[str]
    user_id: str | None = None
    role: str | None = None


class CredentialPut(_Strict):
    value: str = Field(min_length=1, max_length=10_000, description="write-only; never returned")


class Credential(BaseModel):
    """A stored credential's metadata. The value itself is never returned."""

    name: str
    revision: int
    created_at: float
    updated_at: float


class CredentialList(BaseModel):
    data: list[Credential]


class HookAck(BaseModel):
    id: str
    duplicate: bool
