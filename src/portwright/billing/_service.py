"""Billing: checkout, plan changes, invoices, payment webhooks and the grace period.

The tenant's plan (the one quotas read, `tenants.plan`) follows the subscription: set when
a checkout completes or a plan change is paid, kept through a grace period after a failed
payment, and set back to the free plan when the grace period ends unpaid (the subscription
is then cancelled) or the provider ends the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from portwright.billing._provider import (
    BillingProvider,
    InvoiceView,
    ProviderError,
    StripeProvider,
    invoice_view,
)
from portwright.settings import BillingConfig
from portwright.store import BillingAccount, Store

__all__ = ["Billing", "BillingError", "BillingSweeper", "billing_from"]

log = structlog.get_logger("portwright.billing")

Clock = Callable[[], float]


class BillingError(Exception):
    """A refused billing action: `status` to answer, `field` at fault."""

    def __init__(self, status: int, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.status = status
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class PlanChange:
    plan: str
    invoice: InvoiceView | None


class Billing:
    def __init__(
        self,
        store: Store,
        provider: BillingProvider,
        config: BillingConfig,
        *,
        notify: Callable[[str, str, dict[str, object]], object] | None = None,
        clock: Clock = time.time,
        public_url: str = "",
    ) -> None:
        self.store = store
        self.provider = provider
        self.config = config
        self.notify = notify
        self.clock = clock
        self.public_url = public_url.rstrip("/")

    # -- what the portal shows ------------------------------------------------------------

    @property
    def plans(self) -> dict[str, int]:
        """Plan → monthly price (minor unit); the free plan costs 0."""
        return {self.config.free_plan: 0, **self.config.prices}

    def account(self, tenant_id: str) -> BillingAccount | None:
        return self.store.billing.get(tenant_id)

    def invoices(self, tenant_id: str) -> list[InvoiceView]:
        account = self.store.billing.get(tenant_id)
        if account is None or account.customer_id is None:
            return []
        return self.provider.invoices(account.customer_id)

    def _sold(self, plan: str) -> None:
        if plan not in self.plans:
            raise BillingError(
                422, "plan", f"unknown plan {plan!r}; choose one of {', '.join(self.plans)}"
            )

    # -- checkout ------------------------------------------------------------------------

    def start_checkout(self, tenant_id: str, email: str, plan: str) -> tuple[str, str]:
        """(checkout id, client secret) for the page's card field."""
        self._sold(plan)
        if plan == self.config.free_plan:
            raise BillingError(422, "plan", f"{plan!r} is free: nothing to pay")
        account = self.store.billing.get(tenant_id)
        if (
            account is not None
            and account.subscription_id
            and account.status
            in (
                "active",
                "past_due",
            )
        ):
            raise BillingError(409, "plan", "already subscribed: change the plan instead")
        intent = self.provider.start_checkout(
            tenant_id=tenant_id,
            email=email,
            customer_id=account.customer_id if account else None,
            plan=plan,
        )
        self.store.billing.save(
            tenant_id,
            customer_id=intent.customer_id,
            checkout_id=intent.id,
            checkout_plan=plan,
        )
        return intent.id, intent.client_secret

    def complete_checkout(self, tenant_id: str, checkout_id: str, *, actor: str) -> str:
        """Start the subscription of a confirmed checkout; the plan now active."""
        account = self.store.billing.get(tenant_id)
        if account is None or account.checkout_id != checkout_id:
            raise BillingError(404, "checkout_id", f"no open checkout {checkout_id!r} of yours")
        try:
            sub = self.provider.complete_checkout(checkout_id, tenant_id=tenant_id)
        except ProviderError as exc:
            raise BillingError(exc.status, "checkout", str(exc)) from exc
        plan = sub.plan or account.checkout_plan or self.config.free_plan
        active = sub.status in ("active", "trialing")
        self.store.billing.save(
            tenant_id,
            subscription_id=sub.id,
            checkout_id=None,
            checkout_plan=None,
            plan=plan,
            status="active" if active else "past_due",
            grace_until=None if active else self.clock() + self.config.grace_period_s,
            last_error=None if active else f"first payment {sub.status}",
        )
        self._set_plan(tenant_id, plan, actor=actor, why="checkout")
        return plan

    # -- plan changes ----------------------------------------------------------------------

    def change_plan(self, tenant_id: str, plan: str, *, actor: str) -> PlanChange:
        """Upgrade or downgrade the subscription (prorated); the free plan cancels it."""
        self._sold(plan)
        account = self.store.billing.get(tenant_id)
        if (
            account is None
            or not account.subscription_id
            or account.status
            not in (
                "active",
                "past_due",
            )
        ):
            raise BillingError(409, "plan", "no subscription yet: check out first")
        if plan == account.plan:
            raise BillingError(409, "plan", f"already on {plan!r}")
        if plan == self.config.free_plan:
            self._end(account, reason="cancelled by the customer", actor=actor)
            return PlanChange(plan, None)
        try:
            invoice = self.provider.change_plan(account.subscription_id, plan)
        except ProviderError as exc:
            raise BillingError(exc.status, "plan", str(exc)) from exc
        if invoice.status not in ("paid", "draft") and invoice.total > 0:
            # the difference was not paid: keep the old plan; the webhook starts the grace
            self.store.billing.save(tenant_id, last_error=f"plan change to {plan}: unpaid")
            raise BillingError(402, "payment", f"the prorated charge for {plan!r} was declined")
        self.store.billing.save(tenant_id, plan=plan)
        self._set_plan(tenant_id, plan, actor=actor, why="plan change")
        return PlanChange(plan, invoice)

    # -- webhooks (verified and deduplicated by the inbox before they get here) ------------

    def handle_event(self, event: Mapping[str, Any]) -> str:
        kind = str(event.get("type") or "")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            return f"ignored {kind}: no object"
        customer = obj.get("customer")
        if isinstance(customer, dict):
            customer = customer.get("id")
        account = self.store.billing.by_customer(str(customer)) if customer else None
        if account is None:
            return f"ignored {kind}: customer {customer!r} is not one of ours"
        if kind == "invoice.payment_failed":
            return self._payment_failed(account, obj)
        if kind in ("invoice.payment_succeeded", "invoice.paid"):
            return self._payment_succeeded(account, obj)
        if kind == "customer.subscription.deleted":
            return self._subscription_ended(account, obj)
        return f"ignored {kind}"

    def _subscription_ended(self, account: BillingAccount, sub: Mapping[str, Any]) -> str:
        if sub.get("id") == account.subscription_id and account.status != "downgraded":
            self._downgrade(account, reason="the subscription ended", actor="billing")
            return "downgraded: subscription ended"
        return "subscription ended (not the current one)"

    def _payment_failed(self, account: BillingAccount, invoice: Mapping[str, Any]) -> str:
        if account.status not in ("active", "past_due"):
            return f"payment failed while {account.status}: nothing to do"
        view = invoice_view(invoice)
        if account.status == "past_due" and account.grace_until is not None:
            grace = account.grace_until  # a retry failing again does not extend the grace
        else:
            grace = self.clock() + self.config.grace_period_s
        self.store.billing.save(
            account.tenant_id,
            status="past_due",
            grace_until=grace,
            last_error=f"invoice {view.id}: payment failed",
        )
        if self.notify is not None and account.status != "past_due":
            self.notify(
                account.tenant_id,
                "payment_failed",
                {
                    "amount": f"{view.total / 100:.2f} {view.currency.upper()}",
                    "plan": account.plan or "",
                    "grace_until": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(grace)),
                    "free_plan": self.config.free_plan,
                    "link": f"{self.public_url}/app/billing",
                },
            )
        return f"past due until {grace:.0f}"

    def _payment_succeeded(self, account: BillingAccount, invoice: Mapping[str, Any]) -> str:
        if account.status != "past_due":
            return "paid"
        # Providers do not deliver events in order: an older invoice's payment (the
        # checkout's, sent late) must not end the grace while the failed one is still
        # owed. The provider's own record decides: past due ends when nothing is open.
        paid = invoice_view(invoice).id
        if account.customer_id:
            still_open = [
                found.id
                for found in self.provider.invoices(account.customer_id)
                if found.status == "open" and found.id != paid
            ]
            if still_open:
                return f"paid {paid}: still past due on {', '.join(still_open)}"
        self.store.billing.save(
            account.tenant_id, status="active", grace_until=None, last_error=None
        )
        return "paid: grace period over, plan kept"

    # -- the grace period ----------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Downgrade every tenant whose grace period ended unpaid; their tenant ids."""
        done = []
        for account in self.store.billing.grace_over(self.clock()):
            self._end(account, reason="payment failed and the grace period ended", actor="billing")
            done.append(account.tenant_id)
        return done

    def _end(self, account: BillingAccount, *, reason: str, actor: str) -> None:
        if account.subscription_id:
            try:
                self.provider.cancel(account.subscription_id)
            except ProviderError as exc:
                if exc.status != 404:
                    raise
        self._downgrade(account, reason=reason, actor=actor)

    def _downgrade(self, account: BillingAccount, *, reason: str, actor: str) -> None:
        free = self.config.free_plan
        self.store.billing.save(
            account.tenant_id,
            status="downgraded" if account.status == "past_due" else "canceled",
            plan=free,
            subscription_id=None,
            grace_until=None,
            last_error=reason,
        )
        self._set_plan(account.tenant_id, free, actor=actor, why=reason)

    def _set_plan(self, tenant_id: str, plan: str, *, actor: str, why: str) -> None:
        before = self.store.tenants.get(tenant_id).plan
        self.store.accounts.set_plan(tenant_id, plan)
        self.store.audit.record(
            actor=actor,
            action="billing.plan_set",
            target_type="tenant",
            target_id=tenant_id,
            before={"plan": before},
            after={"plan": plan, "why": why},
            tenant_id=tenant_id,
        )
        log.info("plan set", tenant_id=tenant_id, plan=plan, before=before, why=why)


class BillingSweeper:
    """Runs `Billing.sweep` every `every_s` in the gateway's lifespan."""

    def __init__(self, billing: Billing, every_s: float) -> None:
        self.billing = billing
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="billing-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.billing.sweep)
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                log.warning("billing sweep failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.every_s)


def billing_from(
    store: Store,
    config: BillingConfig,
    *,
    notify: Callable[[str, str, dict[str, object]], object] | None = None,
    public_url: str = "",
    provider: BillingProvider | None = None,
    clock: Clock = time.time,
) -> Billing | None:
    """The configured billing, or None when `config.provider` is "none"."""
    if provider is None:
        if config.provider == "none":
            return None
        assert config.api_key is not None  # the config validates it
        provider = StripeProvider(
            config.api_key.get_secret_value(),
            prices=config.prices,
            currency=config.currency,
            api_base=config.api_base,
        )
    return Billing(store, provider, config, notify=notify, clock=clock, public_url=public_url)
