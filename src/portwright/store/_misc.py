"""Tenants, observations, selector-map versions and the audit log."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from portwright._ids import new_id
from portwright.store._records import (
    AuditRecord,
    ObservationRecord,
    SelectorMapRecord,
    TenantRecord,
)
from portwright.store._rows import to_record, to_records
from portwright.store._schema import audit_log, observations, selector_maps, tenants
from portwright.store._slots import SlotObservationRepository

__all__ = ["AuditRepository", "IntelRepository", "TenantRepository"]


class TenantRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def ensure(self, name: str, *, plan: str = "starter") -> TenantRecord:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.name == name)).first()
            if row is None:
                conn.execute(
                    tenants.insert().values(
                        id=new_id("ten"), name=name, plan=plan, created_at=time.time()
                    )
                )
                row = conn.execute(sa.select(tenants).where(tenants.c.name == name)).one()
            return to_record(TenantRecord, row)

    def get(self, tenant_id: str) -> TenantRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).first()
        if row is None:
            raise LookupError(f"no tenant {tenant_id}")
        return to_record(TenantRecord, row)

    def all(self) -> list[TenantRecord]:
        with self.engine.connect() as conn:
            return [to_record(TenantRecord, r) for r in conn.execute(sa.select(tenants))]


class IntelRepository:
    """Observations (every scan) and operator-patched selector maps.

    Observations of kind "slots" (subject "center/visa type", value `{"open": n, "ids":
    [...], "at": portal time}`) go to the slot runs (`slots`); other kinds are kept as
    they come.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.slots = SlotObservationRepository(engine)

    def observe(
        self,
        *,
        portal: str,
        kind: str,
        subject: str,
        value: dict[str, Any],
        tenant_id: str | None = None,
        job_id: str | None = None,
    ) -> None:
        if kind == "slots":
            self._observe_slots(portal, subject, value)
            return
        with self.engine.begin() as conn:
            conn.execute(
                observations.insert().values(
                    portal=portal,
                    tenant_id=tenant_id,
                    job_id=job_id,
                    kind=kind,
                    subject=subject,
                    value=value,
                    observed_at=time.time(),
                )
            )

    def _observe_slots(self, portal: str, subject: str, value: dict[str, Any]) -> None:
        center, _, visa = subject.partition("/")
        center, visa = str(value.get("center", center)), str(value.get("visa_type", visa))
        ids = value.get("ids", [])
        opened, at = value.get("open", len(ids) if isinstance(ids, list) else 0), value.get("at")
        if not center or not visa:
            raise ValueError(f"slot observation subject must be 'center/visa', got {subject!r}")
        if not isinstance(opened, int) or isinstance(opened, bool) or opened < 0:
            raise ValueError(f"slot observation 'open' must be a count >= 0, got {opened!r}")
        if not isinstance(ids, list):
            raise TypeError("slot observation 'ids' must be a list of slot ids")
        when = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None
        self.slots.record(
            portal=portal, center=center[:64], visa_type=visa[:64],
            at=time.time() if when is None else when, open_slots=opened, slot_ids=ids,
        )  # fmt: skip

    def observations(
        self, *, portal: str, kind: str | None = None, subject: str | None = None, limit: int = 1000
    ) -> list[ObservationRecord]:
        query = (
            sa.select(observations)
            .where(observations.c.portal == portal)
            .order_by(observations.c.observed_at.desc())
            .limit(limit)
        )
        if kind is not None:
            query = query.where(observations.c.kind == kind)
        if subject is not None:
            query = query.where(observations.c.subject == subject)
        with self.engine.connect() as conn:
            return to_records(ObservationRecord, conn.execute(query))

    def latest_selectors(self, adapter: str) -> SelectorMapRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(selector_maps)
                .where(selector_maps.c.adapter == adapter)
                .order_by(selector_maps.c.version.desc())
                .limit(1)
            ).first()
        return None if row is None else to_record(SelectorMapRecord, row)

    def add_selectors(
        self, adapter: str, selectors: dict[str, str], *, actor: str, reason: str
    ) -> SelectorMapRecord:
        """Store a new selector-map version (previous version + 1)."""
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(sa.func.max(selector_maps.c.version)).where(
                    selector_maps.c.adapter == adapter
                )
            ).scalar()
            version = int(current or 0) + 1
            conn.execute(
                selector_maps.insert().values(
                    adapter=adapter,
                    version=version,
                    selectors=selectors,
                    created_by=actor,
                    reason=reason,
                    created_at=time.time(),
                )
            )
        latest = self.latest_selectors(adapter)
        assert latest is not None
        return latest


class AuditRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        *,
        actor: str,
        action: str,
        target_type: str,
        target_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        reason: str = "",
        tenant_id: str | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        values = {
            "tenant_id": tenant_id,
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "before": before,
            "after": after,
            "reason": reason,
            "created_at": time.time(),
        }
        if conn is not None:
            conn.execute(audit_log.insert().values(**values))
            return
        with self.engine.begin() as own:
            own.execute(audit_log.insert().values(**values))

    def search(self, *, target_id: str | None = None, limit: int = 200) -> list[AuditRecord]:
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if target_id is not None:
            query = query.where(audit_log.c.target_id == target_id)
        with self.engine.connect() as conn:
            return to_records(AuditRecord, conn.execute(query))
