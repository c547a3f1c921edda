"""`/v1/billing`: the tenant's plan, payment status and invoices; checkout and plan changes.
Owners only among customer users (a member's access token is a 403); an API key acts for
its tenant as its owner made it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from portwright.billing._service import Billing, BillingError
from portwright.client.models import FieldProblem
from portwright.gateway.kernel import (
    ERROR_RESPONSES,
    SECURED,
    ApiError,
    Principal,
    current_principal,
)

__all__ = [
    "BillingInvoice",
    "BillingState",
    "CheckoutStarted",
    "PlanRequest",
    "billing_router",
]

Caller = Annotated[Principal, Depends(current_principal)]


class PlanRequest(BaseModel):
    plan: str = Field(min_length=1, max_length=32, description="e.g. growth")


class BillingInvoiceLine(BaseModel):
    description: str
    amount: int
    proration: bool


class BillingInvoice(BaseModel):
    id: str
    status: str
    total: int = Field(description="in the currency's minor unit (cents)")
    amount_paid: int
    currency: str
    created: int
    proration_total: int
    lines: list[BillingInvoiceLine]


class BillingState(BaseModel):
    plan: str
    status: str = Field(description="none, active, past_due, downgraded or canceled")
    grace_until: float | None
    prices: dict[str, int]
    invoices: list[BillingInvoice]


class CheckoutStarted(BaseModel):
    checkout_id: str
    client_secret: str
    publishable_key: str


class CheckoutDone(BaseModel):
    plan: str


def _owner(caller: Principal) -> None:
    if caller.role is not None and caller.role != "owner":
        raise ApiError(403, "forbidden", f"billing needs the owner role (you are a {caller.role})")


def _refused(exc: BillingError) -> ApiError:
    return ApiError(
        exc.status,
        "billing_refused",
        str(exc),
        fields=[FieldProblem(field=exc.field, problem=exc.problem)],
    )


def invoice_model(inv: object) -> BillingInvoice:
    from portwright.billing._provider import InvoiceView

    assert isinstance(inv, InvoiceView)
    return BillingInvoice(
        id=inv.id,
        status=inv.status,
        total=inv.total,
        amount_paid=inv.amount_paid,
        currency=inv.currency,
        created=inv.created,
        proration_total=inv.proration_total,
        lines=[BillingInvoiceLine(**vars_of(line)) for line in inv.lines],
    )


def vars_of(line: object) -> dict[str, object]:
    return {k: getattr(line, k) for k in ("description", "amount", "proration")}


def billing_router(billing: Billing) -> APIRouter:
    router = APIRouter(prefix="/v1/billing", tags=["billing"], dependencies=SECURED)
    store = billing.store

    @router.get("", response_model=BillingState, responses=ERROR_RESPONSES, summary="Billing")
    async def state(caller: Caller) -> BillingState:
        """The tenant's plan, payment status (a grace period's end) and invoices."""
        _owner(caller)
        tenant = await asyncio.to_thread(store.tenants.get, caller.tenant_id)
        account = await asyncio.to_thread(billing.account, caller.tenant_id)
        invoices = await asyncio.to_thread(billing.invoices, caller.tenant_id)
        return BillingState(
            plan=tenant.plan,
            status=account.status if account else "none",
            grace_until=account.grace_until if account else None,
            prices=billing.plans,
            invoices=[invoice_model(i) for i in invoices],
        )

    @router.post(
        "/checkout",
        response_model=CheckoutStarted,
        status_code=201,
        responses=ERROR_RESPONSES,
        summary="Start a checkout",
    )
    async def checkout(caller: Caller, body: PlanRequest) -> CheckoutStarted:
        """A SetupIntent to confirm with the card (Stripe.js `confirmCardSetup`), then
        `POST /v1/billing/checkout/{checkout_id}/complete`."""
        _owner(caller)
        tenant = await asyncio.to_thread(store.tenants.get, caller.tenant_id)
        try:
            checkout_id, secret = await asyncio.to_thread(
                billing.start_checkout, caller.tenant_id, f"{tenant.name}@tenants", body.plan
            )
        except BillingError as exc:
            raise _refused(exc) from None
        return CheckoutStarted(
            checkout_id=checkout_id,
            client_secret=secret,
            publishable_key=billing.config.publishable_key,
        )

    @router.post(
        "/checkout/{checkout_id}/complete",
        response_model=CheckoutDone,
        responses=ERROR_RESPONSES,
        summary="Complete a checkout",
    )
    async def complete(
        caller: Caller,
        checkout_id: Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[\w-]+$")],
    ) -> CheckoutDone:
        """Starts the subscription once the card is confirmed; the plan is active at once."""
        _owner(caller)
        try:
            plan = await asyncio.to_thread(
                billing.complete_checkout, caller.tenant_id, checkout_id, actor=caller.actor
            )
        except BillingError as exc:
            raise _refused(exc) from None
        return CheckoutDone(plan=plan)

    @router.post(
        "/plan", response_model=BillingState, responses=ERROR_RESPONSES, summary="Change plan"
    )
    async def change(caller: Caller, body: PlanRequest) -> BillingState:
        """Upgrade (the prorated difference is invoiced and charged at once) or downgrade
        (credited on the next invoice); the free plan cancels the subscription."""
        _owner(caller)
        try:
            await asyncio.to_thread(
                billing.change_plan, caller.tenant_id, body.plan, actor=caller.actor
            )
        except BillingError as exc:
            raise _refused(exc) from None
        return await state(caller)

    return router
