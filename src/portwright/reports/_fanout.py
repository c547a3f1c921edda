"""The report of a fan-out job: every item accounted for, with outcome, attempts and timing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from portwright.store import Store

__all__ = ["FanoutReport", "ItemRow", "build_report"]


@dataclass(frozen=True, slots=True)
class ItemRow:
    item: str
    job_id: str
    status: str
    state: str
    reason: str
    attempts: int
    retries: int
    result: dict[str, Any]
    started_at: float
    finished_at: float | None

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else round(self.finished_at - self.started_at, 3)


@dataclass(frozen=True)
class FanoutReport:
    job_id: str
    adapter: str
    state: str
    created_at: float
    finished_at: float | None
    items: list[ItemRow]
    key_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(row.status for row in self.items)
        return {"total": len(self.items), **dict(sorted(counts.items()))}

    @property
    def retries(self) -> int:
        return sum(row.retries for row in self.items)

    @property
    def time_to_complete_s(self) -> float | None:
        ends = [row.finished_at for row in self.items]
        if not ends or any(end is None for end in ends):
            return None
        return round(max(e for e in ends if e is not None) - self.created_at, 3)

    @property
    def failure_reasons(self) -> dict[str, int]:
        return dict(
            Counter(row.reason for row in self.items if row.status == "failed").most_common()
        )


def build_report(store: Store, parent_id: str, *, tenant_id: str | None = None) -> FanoutReport:
    """Read a fan-out job's items (each item's latest attempt) and key events from the store."""
    parent = store.jobs.get(parent_id, tenant_id=tenant_id)
    children = store.jobs.children(parent_id)
    by_item: dict[str, list[Any]] = {}
    for child in children:
        by_item.setdefault(child.item_key or child.id, []).append(child)
    rows = []
    for item, attempts in by_item.items():
        latest = attempts[-1]
        events = store.jobs.events(latest.id)
        retries = sum(1 for e in events if e.to_state == "RETRY_WAIT")
        earlier_retries = sum(
            1 for a in attempts[:-1] for e in store.jobs.events(a.id) if e.to_state == "RETRY_WAIT"
        )
        rows.append(
            ItemRow(
                item=item,
                job_id=latest.id,
                status=latest.status,
                state=latest.state,
                reason=latest.reason or "",
                attempts=len(attempts),
                retries=retries + earlier_retries,
                result=dict(latest.output or {}),
                started_at=attempts[0].created_at,
                finished_at=latest.finished_at,
            )
        )
    key_events: list[dict[str, Any]] = [
        {"at": e.created_at, "actor": e.actor, "to": e.to_state, "reason": e.reason}
        for e in store.jobs.events(parent_id)
    ]
    key_events += [
        {"at": a.created_at, "actor": "engine", "to": f"alert:{a.kind}", "reason": a.reason}
        for a in store.jobs.escalations(job_id=parent_id)
    ]
    key_events += [
        {"at": a.created_at, "actor": a.actor, "to": a.action, "reason": a.reason}
        for a in store.audit.search(target_id=parent_id)
    ]
    key_events.sort(key=lambda e: e["at"])
    return FanoutReport(
        job_id=parent.id,
        adapter=parent.adapter,
        state=parent.state,
        created_at=parent.created_at,
        finished_at=parent.finished_at,
        items=rows,
        key_events=key_events,
    )
