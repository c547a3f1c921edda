"""Operator decisions and claims on escalations, each a compare-and-set with its audit row.

An escalation moves `open` → (`claimed`) → `decided` → `resolved`:

- `claim` sets `claimed` only from `open`; `take_over` moves a claim from another
  operator to the caller (both audited in the same transaction).
- `decide` records the decision only while the escalation is `open`, or `claimed` by the
  deciding actor: exactly one of two concurrent decisions wins (a conditional UPDATE; on
  PostgreSQL the loser's UPDATE re-reads the row after the winner's commit). Only the
  winner's audit row is written — in the winner's transaction.
- The job applies the decision and marks the escalation `resolved` (the orchestrator).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portwright._ids import new_id
from portwright.store._records import EscalationRecord
from portwright.store._rows import to_record
from portwright.store._schema import audit_log, escalations, jobs, tenants
from portwright.store._scope import tenant_transaction

__all__ = ["AuditNote", "CasOutcome", "EscalationPage", "EscalationRepository"]

UNDECIDED = ("open", "claimed")


@dataclass(frozen=True, slots=True)
class AuditNote:
    """The audit row written when (and only when) a compare-and-set wins."""

    actor: str
    action: str
    before: dict[str, Any]
    after: dict[str, Any]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CasOutcome:
    """Whether the caller's change won, and the escalation as it is after the attempt."""

    won: bool
    record: EscalationRecord


@dataclass(frozen=True, slots=True)
class EscalationPage:
    rows: list[EscalationRecord]
    total: int
    next_cursor: str | None


class EscalationRepository:
    """Every query behind the escalation API and the console's decisions."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- compare-and-set ------------------------------------------------------------------

    def _cas(
        self,
        escalation_id: str,
        *,
        tenant_id: str | None,
        where: sa.ColumnElement[bool],
        values: dict[str, Any],
        note: AuditNote,
    ) -> CasOutcome:
        update = escalations.update().where(escalations.c.id == escalation_id, where)
        if tenant_id is not None:
            update = update.where(escalations.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            won = conn.execute(update.values(**values)).rowcount == 1
            row = conn.execute(
                sa.select(escalations).where(escalations.c.id == escalation_id)
            ).first()
            if row is None:
                raise LookupError(f"no escalation {escalation_id}")
            record = to_record(EscalationRecord, row)
            if won:
                conn.execute(
                    audit_log.insert().values(
                        tenant_id=record.tenant_id,
                        actor=note.actor,
                        action=note.action,
                        target_type="escalation",
                        target_id=escalation_id,
                        before=note.before,
                        after=note.after,
                        reason=note.reason,
                        created_at=time.time(),
                    )
                )
        return CasOutcome(won, record)

    def decide(
        self,
        escalation_id: str,
        *,
        actor: str,
        decision: dict[str, Any],
        note: AuditNote,
        tenant_id: str | None = None,
        final: bool = False,
    ) -> CasOutcome:
        """Record `decision` if the escalation is open, or claimed by `actor`. `final`
        resolves it at once (an alert: no job waits to apply the decision)."""
        c = escalations.c
        where = sa.or_(c.status == "open", sa.and_(c.status == "claimed", c.claimed_by == actor))
        values = {
            "status": "resolved" if final else "decided",
            "decision": decision,
            "resolved_by": actor,
            "resolved_at": time.time(),
        }
        return self._cas(escalation_id, tenant_id=tenant_id, where=where, values=values, note=note)

    def claim(
        self,
        escalation_id: str,
        *,
        actor: str,
        note: AuditNote,
        tenant_id: str | None = None,
        take_over: bool = False,
    ) -> CasOutcome:
        """Claim an open escalation; with `take_over`, move another operator's claim."""
        c = escalations.c
        where = (
            sa.and_(c.status == "claimed", c.claimed_by != actor)
            if take_over
            else c.status == "open"
        )
        values = {"status": "claimed", "claimed_by": actor, "claimed_at": time.time()}
        return self._cas(escalation_id, tenant_id=tenant_id, where=where, values=values, note=note)

    # -- portal-level escalations (no job: a probe found the portal changed) ------------------

    def raise_portal(
        self, portal: str, *, kind: str, reason: str, details: dict[str, Any], since: float
    ) -> tuple[str, bool] | None:
        """Open the portal's escalation of `kind` (no job, no tenant, an alert that parks
        nothing), or count one more sighting on the one already open: (id, opened). At
        most one is unresolved per portal and kind (a partial unique index holds it against
        concurrent probes). None when one was raised since `since` (the start of the
        current failure streak) and an operator closed it already: not again until the
        portal passed in between."""
        c = escalations.c
        mine = sa.and_(c.portal == portal, c.kind == kind, c.job_id.is_(None))
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(escalations).where(mine, c.status != "resolved").with_for_update()
            ).first()
            if row is not None:
                seen = dict(row.details or {})
                seen["sightings"] = int(seen.get("sightings", 1)) + 1
                seen["last_seen_at"] = now
                seen["last_detail"] = details.get("detail", "")
                conn.execute(escalations.update().where(c.id == row.id).values(details=seen))
                return row.id, False
            closed = conn.execute(
                sa.select(c.id).where(mine, c.created_at >= since).limit(1)
            ).first()
            if closed is not None:
                return None
        escalation_id = new_id("esc")
        values = {
            "id": escalation_id, "job_id": None, "tenant_id": "", "portal": portal,
            "kind": kind, "status": "open", "step": "alert", "reason": reason,
            "details": details | {"sightings": 1, "last_seen_at": now}, "created_at": now,
        }  # fmt: skip
        try:
            with self.engine.begin() as conn:
                conn.execute(escalations.insert().values(**values))
        except sa.exc.IntegrityError:  # a concurrent probe opened it first
            return None
        return escalation_id, True

    def resolve_portal(self, portal: str, *, kind: str, actor: str, reason: str) -> list[str]:
        """Resolve the portal's unresolved escalations of `kind` (each audited once); the ids
        this call resolved (not those another transaction resolved meanwhile)."""
        c = escalations.c
        now = time.time()
        decision = {"action": "resolved", "reason": reason, "actor": actor, "decided_at": now}
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    sa.select(c.id).where(
                        c.portal == portal, c.kind == kind, c.job_id.is_(None),
                        c.status != "resolved",
                    )
                ).scalars()
            )  # fmt: skip
            resolved: list[str] = []
            for escalation_id in ids:
                changed = conn.execute(
                    escalations.update()
                    .where(c.id == escalation_id, c.status != "resolved")
                    .values(status="resolved", decision=decision, resolved_by=actor,
                            resolved_at=now)
                ).rowcount  # fmt: skip
                if changed != 1:
                    # resolved meanwhile by another transaction (two probe ticks, two
                    # workers): it audited that; one resolution, one audit row
                    continue
                resolved.append(escalation_id)
                conn.execute(
                    audit_log.insert().values(
                        tenant_id=None, actor=actor, action="escalation.resolve",
                        target_type="escalation", target_id=escalation_id,
                        before={"status": "open", "portal": portal}, after={"status": "resolved"},
                        reason=reason, created_at=now,
                    )
                )  # fmt: skip
        return resolved

    # -- reading ----------------------------------------------------------------------------

    def find(
        self,
        *,
        tenant_id: str | None,
        state: str | None = None,
        kind: str | None = None,
        portal: str | None = None,
        selector_key: str | None = None,
        job_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        newest_first: bool = True,
        portal_level: bool = False,
    ) -> EscalationPage:
        """One page of escalations and the total matching the filters. `state` is one of
        open, claimed, decided, resolved, or `unresolved` (every state but resolved)."""
        c = escalations.c
        conditions: list[sa.ColumnElement[bool]] = []
        if tenant_id is not None:
            conditions.append(c.tenant_id == tenant_id)
        if state == "unresolved":
            conditions.append(c.status != "resolved")
        elif state:
            conditions.append(c.status == state)
        if kind:
            conditions.append(c.kind == kind)
        if portal:
            conditions.append(c.portal == portal)
        if job_id:
            conditions.append(c.job_id == job_id)
        if portal_level:  # raised by a portal's probe: no job, no tenant
            conditions.append(c.job_id.is_(None))
        if selector_key:
            conditions.append(c.details["selector_key"].as_string() == selector_key)
        order = c.id.desc() if newest_first else c.id.asc()
        query = sa.select(escalations).where(*conditions).order_by(order).limit(limit + 1)
        if cursor:
            query = query.where(c.id < cursor if newest_first else c.id > cursor)
        count = sa.select(sa.func.count()).select_from(escalations).where(*conditions)
        with tenant_transaction(self.engine, tenant_id) as conn:
            rows = [to_record(EscalationRecord, r) for r in conn.execute(query)]
            total = int(conn.execute(count).scalar_one())
        more = len(rows) > limit
        rows = rows[:limit]
        return EscalationPage(rows, total, rows[-1].id if more and rows else None)

    def parked_on_selector(
        self,
        *,
        portal: str,
        adapter: str,
        adapter_version: str,
        selector_key: str,
        tenant_id: str | None = None,
    ) -> list[EscalationRecord]:
        """Undecided page-changed escalations of one portal and adapter version whose
        missing selector is `selector_key` (every tenant's unless `tenant_id` is given)."""
        c = escalations.c
        query = (
            sa.select(escalations)
            .join(jobs, jobs.c.id == c.job_id)
            .where(
                c.status.in_(UNDECIDED),
                c.kind == "page_changed",
                c.portal == portal,
                jobs.c.adapter == adapter,
                jobs.c.adapter_version == adapter_version,
                c.details["selector_key"].as_string() == selector_key,
            )
            .order_by(c.id)
        )
        if tenant_id is not None:
            query = query.where(c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            return [to_record(EscalationRecord, r) for r in conn.execute(query)]

    def undelivered_decisions(
        self, *, decided_before: float, limit: int = 100
    ) -> list[EscalationRecord]:
        """Escalations decided before `decided_before` whose job still waits: a decision
        recorded but (after a crash) never delivered to its job."""
        c = escalations.c
        query = (
            sa.select(escalations)
            .join(jobs, jobs.c.id == c.job_id)
            .where(
                c.status == "decided",
                c.resolved_at < decided_before,
                jobs.c.status == "waiting",
            )
            .order_by(c.resolved_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [to_record(EscalationRecord, r) for r in conn.execute(query)]

    def tenant_names(self, tenant_ids: set[str]) -> dict[str, str]:
        if not tenant_ids:
            return {}
        query = sa.select(tenants.c.id, tenants.c.name).where(tenants.c.id.in_(tenant_ids))
        with self.engine.connect() as conn:
            return {str(r[0]): str(r[1]) for r in conn.execute(query)}
