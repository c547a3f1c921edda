"""The tenant-wide intake forms a customer fills (portal `/app/intake`, `PUT /v1/intake/…`)
and their adapters' jobs read (`sc.intake(name)`): one JSON document per tenant and form."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from portwright.store._schema import intake_forms
from portwright.store._scope import tenant_transaction

__all__ = ["IntakeRepository"]


class IntakeRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, tenant_id: str, form: str) -> dict[str, Any] | None:
        """What the tenant saved for `form`, or None."""
        t = intake_forms.c
        with tenant_transaction(self.engine, tenant_id) as conn:
            row = conn.execute(
                sa.select(t.data).where(t.tenant_id == tenant_id, t.form == form)
            ).first()
        return None if row is None else dict(row.data)

    def updated_at(self, tenant_id: str, form: str) -> float | None:
        t = intake_forms.c
        with tenant_transaction(self.engine, tenant_id) as conn:
            value = conn.execute(
                sa.select(t.updated_at).where(t.tenant_id == tenant_id, t.form == form)
            ).scalar()
        return None if value is None else float(value)

    def put(self, tenant_id: str, form: str, data: dict[str, Any], *, actor: str) -> None:
        """Save (or replace) the tenant's `form`; the caller validated `data`."""
        t = intake_forms.c
        now = time.time()
        with tenant_transaction(self.engine, tenant_id) as conn:
            done = conn.execute(
                intake_forms.update()
                .where(t.tenant_id == tenant_id, t.form == form)
                .values(data=data, updated_by=actor, updated_at=now)
            )
            if done.rowcount == 0:
                conn.execute(
                    intake_forms.insert().values(
                        tenant_id=tenant_id, form=form, data=data, updated_by=actor, updated_at=now
                    )
                )
