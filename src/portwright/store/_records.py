"""Row shapes returned by the store: frozen dataclasses, no SQLAlchemy types leak out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AuditRecord",
    "BreakerRecord",
    "EscalationRecord",
    "EventRecord",
    "EvidenceRecord",
    "JobRecord",
    "ObservationRecord",
    "PortalRecord",
    "SelectorMapRecord",
    "SlotRunRecord",
    "TenantRecord",
    "WorkerRecord",
]


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: str
    name: str
    plan: str
    created_at: float


@dataclass(frozen=True, slots=True)
class PortalRecord:
    name: str
    max_concurrency: int
    paused: bool
    paused_reason: str | None
    cooldown_until: float | None
    cooldown_reason: str | None
    degraded_since: float | None
    degraded_reason: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    tenant_id: str
    adapter: str
    adapter_version: str
    portal: str
    state: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    error_class: str | None
    reason: str | None
    waiting_for: str | None
    lock_key: str | None
    priority: int
    paused: bool
    cancel_requested: bool
    attempts: int
    seq: int
    created_at: float
    updated_at: float
    finished_at: float | None
    parent_id: str | None = None
    item_key: str | None = None
    notes: dict[str, Any] | None = None
    trace_parent: str | None = None  # the submitting span (W3C traceparent), if traced


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    job_id: str
    tenant_id: str
    seq: int
    kind: str
    actor: str
    from_state: str | None
    to_state: str
    reason: str
    meta: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class EscalationRecord:
    id: str
    job_id: str | None  # None: a portal-level escalation (a probe found the portal changed)
    tenant_id: str
    portal: str
    kind: str
    status: str
    step: str
    reason: str
    details: dict[str, Any]
    decision: dict[str, Any] | None
    created_at: float
    claimed_by: str | None
    claimed_at: float | None
    resolved_by: str | None
    resolved_at: float | None


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    id: str
    job_id: str
    tenant_id: str
    step: str
    kind: str
    blob_key: str
    content_type: str
    size: int
    meta: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class ObservationRecord:
    id: int
    portal: str
    tenant_id: str | None
    job_id: str | None
    kind: str
    subject: str
    value: dict[str, Any]
    observed_at: float


@dataclass(frozen=True, slots=True)
class SlotRunRecord:
    """A run of scans of one (portal, center, visa type) that saw the same open slots."""

    id: int
    portal: str
    center: str
    visa_type: str
    open: int
    new: int
    slot_ids: list[str]
    first_at: float
    last_at: float
    scans: int


@dataclass(frozen=True, slots=True)
class SelectorMapRecord:
    adapter: str
    version: int
    selectors: dict[str, str]
    created_by: str
    reason: str
    created_at: float


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    id: str
    hostname: str
    pid: int
    status: str
    started_at: float
    heartbeat_at: float
    taken_over_by: str | None
    taken_over_at: float | None
    recovered: int


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    name: str
    state: str
    opened_at: float | None
    open_until: float | None
    probe_lease_until: float | None
    reason: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    tenant_id: str | None
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str
    created_at: float
    extra: dict[str, Any] = field(default_factory=dict)
