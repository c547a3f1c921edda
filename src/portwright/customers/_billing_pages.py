"""The portal's billing page (owners): the plan, payment status and grace period, upgrade
and downgrade, the invoices, and the checkout with the card field (Stripe.js)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.customers._auth import Customer, need
from portwright.customers._render import PREFIX, page

if TYPE_CHECKING:
    from portwright.billing import Billing
    from portwright.customers._intake import Intakes

__all__ = ["billing_pages"]

Owner = Annotated[Customer, Depends(need("owner"))]
CHECKOUT_ID = r"^[\w-]{1,255}$"


def billing_pages(billing: Billing, intakes: Intakes | None = None) -> APIRouter:
    """The billing pages; after a first payment, a tenant whose intake forms (those the
    installed adapters declare) are not filled in is taken to the first of them."""
    from portwright.billing import BillingError, ProviderError

    router = APIRouter()
    store = billing.store

    async def _render(
        request: Request, me: Customer, *, error: str = "", status_code: int = 200
    ) -> Response:
        tenant = await asyncio.to_thread(store.tenants.get, me.tenant_id)
        account = await asyncio.to_thread(billing.account, me.tenant_id)
        try:
            invoices = await asyncio.to_thread(billing.invoices, me.tenant_id)
            invoices_error = ""
        except ProviderError as exc:
            invoices, invoices_error = [], str(exc)
        return page(
            request,
            "billing.html",
            me,
            nav="billing",
            plan=tenant.plan,
            account=account,
            status=account.status if account else "none",
            prices=billing.plans,
            free_plan=billing.config.free_plan,
            currency=billing.config.currency.upper(),
            invoices=invoices,
            invoices_error=invoices_error,
            error=error or request.query_params.get("error", "")[:300],
            changed=request.query_params.get("changed", "")[:40],
            status_code=status_code,
        )

    @router.get("/billing")
    async def billing_page(request: Request, me: Owner) -> Response:
        return await _render(request, me)

    @router.post("/billing/plan")
    async def change_plan(
        request: Request, me: Owner, plan: Annotated[str, Form(max_length=32)] = ""
    ) -> Response:
        try:
            await asyncio.to_thread(billing.change_plan, me.tenant_id, plan, actor=me.actor)
        except BillingError as exc:
            return await _render(request, me, error=str(exc), status_code=exc.status)
        return RedirectResponse(f"{PREFIX}/billing?changed={plan}", status_code=303)

    @router.post("/billing/checkout")
    async def checkout(
        request: Request, me: Owner, plan: Annotated[str, Form(max_length=32)] = ""
    ) -> Response:
        try:
            checkout_id, secret = await asyncio.to_thread(
                billing.start_checkout, me.tenant_id, me.email, plan
            )
        except BillingError as exc:
            return await _render(request, me, error=str(exc), status_code=exc.status)
        return page(
            request,
            "checkout.html",
            me,
            nav="billing",
            plan=plan,
            price=billing.plans[plan],
            currency=billing.config.currency.upper(),
            checkout_id=checkout_id,
            client_secret=secret,
            publishable_key=billing.config.publishable_key,
            js_url=billing.config.js_url
            if billing.config.api_base is None
            else billing.config.api_base.rstrip("/") + "/js.stripe.com/v3/",
        )

    @router.post("/billing/checkout/{checkout_id}/complete")
    async def complete(request: Request, me: Owner, checkout_id: str) -> Response:
        import re

        if not re.match(CHECKOUT_ID, checkout_id):
            raise HTTPException(404, "checkout_id: not a checkout id")
        try:
            plan = await asyncio.to_thread(
                billing.complete_checkout, me.tenant_id, checkout_id, actor=me.actor
            )
        except BillingError as exc:
            if exc.status == 404:
                raise HTTPException(404, str(exc)) from exc
            return await _render(request, me, error=str(exc), status_code=exc.status)
        for name in intakes.forms() if intakes is not None else {}:
            assert intakes is not None
            if await intakes.saved(me.tenant_id, name) is None:
                return RedirectResponse(f"{PREFIX}/intake/{name}?paid={plan}", status_code=303)
        return RedirectResponse(f"{PREFIX}/billing?changed={plan}", status_code=303)

    return router
