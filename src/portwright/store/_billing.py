"""Billing accounts: one row per tenant with its payment provider's customer and
subscription, the plan it pays for, its payment status and the end of a grace period."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portwright.store._rows import to_record, to_records
from portwright.store._schema import billing_accounts
from portwright.store._scope import tenant_transaction

__all__ = ["BillingAccount", "BillingRepository"]


@dataclass(frozen=True, slots=True)
class BillingAccount:
    """A tenant's billing state. `status`: none (never subscribed), active, past_due (a
    payment failed; the plan lasts until `grace_until`), downgraded (grace over, back on
    the free plan), canceled."""

    tenant_id: str
    customer_id: str | None
    subscription_id: str | None
    checkout_id: str | None
    checkout_plan: str | None
    plan: str | None
    status: str
    grace_until: float | None
    last_error: str | None
    updated_at: float


class BillingRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, tenant_id: str) -> BillingAccount | None:
        query = sa.select(billing_accounts).where(billing_accounts.c.tenant_id == tenant_id)
        with tenant_transaction(self.engine, tenant_id) as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(BillingAccount, row)

    def by_customer(self, customer_id: str) -> BillingAccount | None:
        """The account of a provider customer (system view: a webhook names no tenant)."""
        query = sa.select(billing_accounts).where(billing_accounts.c.customer_id == customer_id)
        with tenant_transaction(self.engine, None) as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(BillingAccount, row)

    def save(self, tenant_id: str, **values: Any) -> BillingAccount:
        """Create or update the tenant's row with `values` (columns of billing_accounts)."""
        unknown = set(values) - set(billing_accounts.c.keys())
        if unknown:
            raise ValueError(f"not billing columns: {sorted(unknown)}")
        now = time.time()
        with tenant_transaction(self.engine, tenant_id) as conn:
            found = conn.execute(
                sa.select(billing_accounts.c.tenant_id).where(
                    billing_accounts.c.tenant_id == tenant_id
                )
            ).first()
            if found is None:
                conn.execute(
                    billing_accounts.insert().values(
                        tenant_id=tenant_id,
                        status=values.pop("status", "none"),
                        updated_at=now,
                        **values,
                    )
                )
            else:
                conn.execute(
                    billing_accounts.update()
                    .where(billing_accounts.c.tenant_id == tenant_id)
                    .values(updated_at=now, **values)
                )
        saved = self.get(tenant_id)
        assert saved is not None
        return saved

    def grace_over(self, now: float, limit: int = 100) -> list[BillingAccount]:
        """Accounts past due whose grace period ended at or before `now` (system view)."""
        query = (
            sa.select(billing_accounts)
            .where(billing_accounts.c.status == "past_due")
            .where(billing_accounts.c.grace_until <= now)
            .order_by(billing_accounts.c.grace_until)
            .limit(limit)
        )
        with tenant_transaction(self.engine, None) as conn:
            rows = conn.execute(query).all()
        return to_records(BillingAccount, rows)
