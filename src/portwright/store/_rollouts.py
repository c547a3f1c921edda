"""Rollouts of adapter versions per portal (and tenant), shadow comparisons, break rates.

A rollout row says which version of a portal's adapter new jobs start on: the live
one, a canary (for a percentage of jobs or for named tenants) and a shadow that runs
the live version's read-only steps beside it. Every change is written with its audit
row in the same transaction; a conditional change (`expect`) lets several workers race
to roll a canary back and exactly one of them do it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portwright.store._rows import to_record, to_records
from portwright.store._schema import (
    adapter_rollouts,
    audit_log,
    escalations,
    jobs,
    portal_probes,
    shadow_results,
)

__all__ = ["BREAK_CLASSES", "ProbeRecord", "RolloutRecord", "RolloutRepository", "ShadowStat"]

# What counts as a version breaking: the page no longer reads as it did, or the adapter's
# own code failed. Portal weather (429, 5xx, blocks) is the same for every version.
BREAK_CLASSES = ("page_changed", "adapter_error", "unexpected")
_ENDED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    portal: str
    scope: str  # "" for every tenant of the portal, else one tenant's id
    adapter: str
    live: str
    canary: str | None
    canary_percent: int
    canary_tenants: list[str]
    shadow: str | None
    promote_after: int
    rollback_margin: float
    rollback_window_s: float
    rollback_min_jobs: int
    updated_by: str
    reason: str
    updated_at: float

    def setting(self) -> dict[str, Any]:
        """The fields an operator sets (what the audit log's before/after show)."""
        return {
            "adapter": self.adapter,
            "live": self.live,
            "canary": self.canary,
            "canary_percent": self.canary_percent,
            "canary_tenants": list(self.canary_tenants),
            "shadow": self.shadow,
            "promote_after": self.promote_after,
            "rollback_margin": self.rollback_margin,
            "rollback_window_s": self.rollback_window_s,
            "rollback_min_jobs": self.rollback_min_jobs,
        }


@dataclass(frozen=True, slots=True)
class ShadowStat:
    """Comparisons of one step by one shadow version on one portal, by outcome."""

    portal: str
    step: str
    shadow_version: str
    agree: int
    differ: int
    error: int
    refused: int

    @property
    def total(self) -> int:
        return self.agree + self.differ + self.error + self.refused

    @property
    def agreement(self) -> float | None:
        return self.agree / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    portal: str
    input: dict[str, Any]
    every_s: float
    enabled: bool
    next_at: float
    last_at: float | None
    last_version: str | None
    last_outcome: str | None  # ok, page_changed, adapter_error, no_probe, or an error class
    last_detail: str | None
    last_ok_at: float | None
    failures: int
    updated_by: str


class RolloutRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- the setting ---------------------------------------------------------------------

    def get(self, portal: str, scope: str = "") -> RolloutRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(adapter_rollouts).where(
                    adapter_rollouts.c.portal == portal, adapter_rollouts.c.scope == scope
                )
            ).first()
        return None if row is None else to_record(RolloutRecord, row)

    def for_tenant(self, portal: str, tenant_id: str) -> RolloutRecord | None:
        """The rollout a tenant's new job of `portal` follows: its own, else the portal's."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(adapter_rollouts).where(
                    adapter_rollouts.c.portal == portal,
                    adapter_rollouts.c.scope.in_(["", tenant_id]),
                )
            ).all()
        records = sorted((to_record(RolloutRecord, r) for r in rows), key=lambda r: r.scope)
        return records[-1] if records else None

    def all(self) -> list[RolloutRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(adapter_rollouts).order_by(
                    adapter_rollouts.c.portal, adapter_rollouts.c.scope
                )
            )
            return to_records(RolloutRecord, rows)

    def put(
        self,
        portal: str,
        scope: str,
        setting: dict[str, Any],
        *,
        actor: str,
        action: str,
        reason: str = "",
        expect: dict[str, Any] | None = None,
    ) -> tuple[RolloutRecord | None, RolloutRecord] | None:
        """Write the rollout's `setting` (every field of `RolloutRecord.setting`) with its
        audit row; (before, after). With `expect`, only when the row's fields still hold
        those values (None otherwise: someone else changed it first)."""
        now = time.time()
        key = (adapter_rollouts.c.portal == portal, adapter_rollouts.c.scope == scope)
        values = {**setting, "updated_by": actor, "reason": reason, "updated_at": now}
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(adapter_rollouts).where(*key).with_for_update()).first()
            before = None if row is None else to_record(RolloutRecord, row)
            if expect is not None:
                if before is None:
                    return None
                current = before.setting()
                if any(current.get(k) != v for k, v in expect.items()):
                    return None
            if before is None:
                conn.execute(adapter_rollouts.insert().values(portal=portal, scope=scope, **values))
            else:
                conn.execute(adapter_rollouts.update().where(*key).values(**values))
            after = to_record(
                RolloutRecord, conn.execute(sa.select(adapter_rollouts).where(*key)).one()
            )
            conn.execute(
                audit_log.insert().values(
                    tenant_id=scope or None,
                    actor=actor,
                    action=action,
                    target_type="portal",
                    target_id=portal if not scope else f"{portal}/{scope}",
                    before=None if before is None else before.setting(),
                    after=after.setting(),
                    reason=reason,
                    created_at=now,
                )
            )
        return before, after

    def delete(self, portal: str, scope: str, *, actor: str, reason: str = "") -> bool:
        """Remove a rollout (new jobs then start on the adapter's default version)."""
        key = (adapter_rollouts.c.portal == portal, adapter_rollouts.c.scope == scope)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(adapter_rollouts).where(*key).with_for_update()).first()
            if row is None:
                return False
            conn.execute(adapter_rollouts.delete().where(*key))
            conn.execute(
                audit_log.insert().values(
                    tenant_id=scope or None,
                    actor=actor,
                    action="rollout.delete",
                    target_type="portal",
                    target_id=portal if not scope else f"{portal}/{scope}",
                    before=to_record(RolloutRecord, row).setting(),
                    after=None,
                    reason=reason,
                    created_at=time.time(),
                )
            )
        return True

    # -- shadow comparisons --------------------------------------------------------------

    def record_shadow(
        self,
        *,
        portal: str,
        adapter: str,
        step: str,
        job_id: str,
        live_version: str,
        shadow_version: str,
        outcome: str,
        detail: str = "",
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                shadow_results.insert().values(
                    portal=portal,
                    adapter=adapter,
                    step=step,
                    job_id=job_id,
                    live_version=live_version,
                    shadow_version=shadow_version,
                    outcome=outcome,
                    detail=detail[:2000],
                    created_at=time.time(),
                )
            )

    def shadow_stats(self, portal: str | None = None, *, since: float = 0.0) -> list[ShadowStat]:
        """Comparisons by portal, step and shadow version since `since`."""
        c = shadow_results.c
        query = (
            sa.select(c.portal, c.step, c.shadow_version, c.outcome, sa.func.count())
            .where(c.created_at >= since)
            .group_by(c.portal, c.step, c.shadow_version, c.outcome)
        )
        if portal is not None:
            query = query.where(c.portal == portal)
        counts: dict[tuple[str, str, str], dict[str, int]] = {}
        with self.engine.connect() as conn:
            for p, step, version, outcome, n in conn.execute(query):
                counts.setdefault((p, step, version), {})[outcome] = int(n)
        return [
            ShadowStat(
                portal=p,
                step=step,
                shadow_version=version,
                agree=n.get("agree", 0),
                differ=n.get("differ", 0),
                error=n.get("error", 0),
                refused=n.get("refused", 0),
            )
            for (p, step, version), n in sorted(counts.items())
        ]

    def shadow_jobs(self, portal: str, shadow_version: str, *, since: float) -> tuple[int, int]:
        """(jobs whose every comparison agreed, jobs with any other outcome) since `since`."""
        c = shadow_results.c
        query = (
            sa.select(c.job_id, sa.func.min(sa.case((c.outcome == "agree", 1), else_=0)))
            .where(c.portal == portal, c.shadow_version == shadow_version, c.created_at >= since)
            .group_by(c.job_id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        agreed = sum(1 for _, ok in rows if ok)
        return agreed, len(rows) - agreed

    # -- break rates ---------------------------------------------------------------------

    def break_rate(
        self, portal: str, adapter: str, version: str, *, since: float
    ) -> tuple[int, int]:
        """(broken, judged) among the jobs of `version` started since `since`: broken when
        the job failed or escalated for a page change or an adapter error; judged when
        broken or ended."""
        escalated = (
            sa.select(escalations.c.id)
            .where(escalations.c.job_id == jobs.c.id, escalations.c.kind.in_(BREAK_CLASSES))
            .exists()
        )
        broken = sa.or_(jobs.c.error_class.in_(BREAK_CLASSES), escalated)
        query = sa.select(
            sa.func.count().filter(broken),
            sa.func.count().filter(sa.or_(broken, jobs.c.status.in_(_ENDED))),
        ).where(
            jobs.c.portal == portal,
            jobs.c.adapter == adapter,
            jobs.c.adapter_version == version,
            jobs.c.created_at >= since,
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        return int(row[0] or 0), int(row[1] or 0)

    def last_broken_job(self, portal: str, version: str, *, since: float) -> str | None:
        """The latest job of `version` that broke (where a rollback's alert is raised)."""
        escalated = (
            sa.select(escalations.c.id)
            .where(escalations.c.job_id == jobs.c.id, escalations.c.kind.in_(BREAK_CLASSES))
            .exists()
        )
        query = (
            sa.select(jobs.c.id)
            .where(
                jobs.c.portal == portal,
                jobs.c.adapter_version == version,
                jobs.c.created_at >= since,
                sa.or_(jobs.c.error_class.in_(BREAK_CLASSES), escalated),
            )
            .order_by(jobs.c.created_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    # -- synthetic probes ----------------------------------------------------------------

    def set_probe(
        self, portal: str, *, input: dict[str, Any], every_s: float, enabled: bool, actor: str
    ) -> ProbeRecord:
        """Configure the portal's probe (audited); it runs next as soon as it is due."""
        now = time.time()
        key = portal_probes.c.portal == portal
        values = {"input": input, "every_s": every_s, "enabled": enabled, "updated_by": actor}
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(portal_probes).where(key).with_for_update()).first()
            if row is None:
                conn.execute(portal_probes.insert().values(portal=portal, next_at=now, **values))
            else:
                conn.execute(portal_probes.update().where(key).values(next_at=now, **values))
            conn.execute(
                audit_log.insert().values(
                    actor=actor, action="probe.set", target_type="portal", target_id=portal,
                    before=None if row is None else {"every_s": row.every_s, "enabled": row.enabled},  # noqa: E501
                    after={"every_s": every_s, "enabled": enabled}, reason="", created_at=now,
                )
            )  # fmt: skip
            return to_record(ProbeRecord, conn.execute(sa.select(portal_probes).where(key)).one())

    def probe(self, portal: str) -> ProbeRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(portal_probes).where(portal_probes.c.portal == portal))
            first = row.first()
        return None if first is None else to_record(ProbeRecord, first)

    def probes(self) -> list[ProbeRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(portal_probes).order_by(portal_probes.c.portal))
            return to_records(ProbeRecord, rows)

    def record_probe(self, portal: str, *, version: str, outcome: str, detail: str) -> None:
        now = time.time()
        c = portal_probes.c
        ok = outcome == "ok"
        values: dict[str, Any] = {
            "last_at": now,
            "last_version": version,
            "last_outcome": outcome,
            "last_detail": detail[:2000],
            "failures": 0 if ok else c.failures + 1,
        }
        if ok:
            values["last_ok_at"] = now
        with self.engine.begin() as conn:
            conn.execute(portal_probes.update().where(c.portal == portal).values(**values))

    def parked_by_break(self, portal: str, adapter: str, version: str) -> list[tuple[str, str]]:
        """(escalation id, job id) of the jobs of `version` waiting, unclaimed, on an
        escalation for a break (what an automatic rollback may retry on live)."""
        query = (
            sa.select(escalations.c.id, jobs.c.id)
            .join(jobs, jobs.c.id == escalations.c.job_id)
            .where(
                escalations.c.status == "open",
                escalations.c.kind.in_(BREAK_CLASSES),
                jobs.c.portal == portal,
                jobs.c.adapter == adapter,
                jobs.c.adapter_version == version,
            )
            .order_by(jobs.c.id)
        )
        with self.engine.connect() as conn:
            return [(str(e), str(j)) for e, j in conn.execute(query)]
