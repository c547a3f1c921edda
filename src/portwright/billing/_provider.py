"""The payment provider seam and its Stripe implementation (the official `stripe` library).

One code path for Stripe and for localstripe (the sandbox's stateful fake Stripe): only the
API address and the keys differ (`BillingConfig.api_base`, `api_key`). Prices are Stripe
"plans" (`pw_<plan>`, a monthly amount in the currency's minor unit), made on first use:
localstripe serves plans but not the newer prices API, and Stripe still accepts plans.

The checkout is a SetupIntent: the page confirms it with the card in the browser (Stripe.js),
then `complete_checkout` makes the card the customer's default and starts the subscription.
A plan change updates the subscription's item (Stripe's default: prorations), then invoices
the pending proration items at once and pays that invoice.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import stripe

__all__ = [
    "BillingProvider",
    "CheckoutIntent",
    "InvoiceLine",
    "InvoiceView",
    "ProviderError",
    "StripeProvider",
    "SubscriptionView",
]


class ProviderError(Exception):
    """The provider refused or failed; `status` is the HTTP status to answer (402 for a
    declined card, 502 for the provider failing, 404 for an unknown object)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class CheckoutIntent:
    id: str
    client_secret: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    id: str
    customer_id: str
    plan: str | None
    status: str
    current_period_end: int | None


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    amount: int
    proration: bool


@dataclass(frozen=True, slots=True)
class InvoiceView:
    id: str
    status: str
    total: int
    amount_paid: int
    currency: str
    created: int
    lines: tuple[InvoiceLine, ...]

    @property
    def proration_total(self) -> int:
        return sum(line.amount for line in self.lines if line.proration)


class BillingProvider(Protocol):
    """What billing needs from a payment provider (synchronous; called off the loop)."""

    def start_checkout(
        self, *, tenant_id: str, email: str, customer_id: str | None, plan: str
    ) -> CheckoutIntent: ...

    def complete_checkout(self, checkout_id: str, *, tenant_id: str) -> SubscriptionView: ...

    def change_plan(self, subscription_id: str, plan: str) -> InvoiceView: ...

    def cancel(self, subscription_id: str) -> None: ...

    def subscription(self, subscription_id: str) -> SubscriptionView: ...

    def invoices(self, customer_id: str, limit: int = 24) -> list[InvoiceView]: ...


PLAN_PREFIX = "pw_"


def plan_of_price(price_id: str | None) -> str | None:
    """Our plan name from the provider's plan id (`pw_growth` → growth); None if foreign."""
    if price_id and price_id.startswith(PLAN_PREFIX):
        return price_id[len(PLAN_PREFIX) :]
    return None


def _d(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj)


def _sub_view(sub: Any) -> SubscriptionView:
    data = _d(sub)
    items = (data.get("items") or {}).get("data") or []
    first = items[0] if items else {}
    plan_id = ((first.get("plan") or first.get("price") or {}) or {}).get("id")
    period_end = data.get("current_period_end") or first.get("current_period_end")
    return SubscriptionView(
        id=str(data["id"]),
        customer_id=str(data.get("customer") or ""),
        plan=plan_of_price(plan_id),
        status=str(data.get("status") or ""),
        current_period_end=int(period_end) if period_end else None,
    )


def invoice_view(data: Mapping[str, Any]) -> InvoiceView:
    lines = ((data.get("lines") or {}).get("data")) or []
    return InvoiceView(
        id=str(data.get("id") or ""),
        status=str(data.get("status") or ""),
        total=int(data.get("total") or 0),
        amount_paid=int(data.get("amount_paid") or 0),
        currency=str(data.get("currency") or ""),
        created=int(data.get("created") or data.get("date") or 0),
        lines=tuple(
            InvoiceLine(
                str(line.get("description") or ""),
                int(line.get("amount") or 0),
                bool(
                    line.get("proration")
                    or ((line.get("parent") or {}).get("subscription_item_details") or {}).get(
                        "proration"
                    )
                ),
            )
            for line in lines
        ),
    )


class StripeProvider:
    """`BillingProvider` over Stripe's API, or any server that speaks it (localstripe)."""

    def __init__(
        self,
        api_key: str,
        *,
        prices: Mapping[str, int],
        currency: str = "eur",
        api_base: str | None = None,
        timeout_s: float = 20.0,
    ) -> None:
        addresses: dict[str, str] = {"api": api_base.rstrip("/")} if api_base else {}
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=addresses,  # type: ignore[arg-type]
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=timeout_s),
        )
        self.prices = dict(prices)
        self.currency = currency
        self._made: set[str] = set()
        self._lock = threading.Lock()

    # -- prices --------------------------------------------------------------------------

    def price_id(self, plan: str) -> str:
        """The provider's plan for `plan`, made on first use (same id on every process)."""
        if plan not in self.prices:
            raise ProviderError(422, f"plan: {plan!r} is not sold (sold: {sorted(self.prices)})")
        price_id = PLAN_PREFIX + plan
        with self._lock:
            if price_id in self._made:
                return price_id
            try:
                self.client.v1.plans.retrieve(price_id)
            except stripe.InvalidRequestError:
                product = self.client.v1.products.create(
                    params={"name": f"Portwright {plan}", "metadata": {"plan": plan}}
                )
                try:
                    self.client.v1.plans.create(
                        params={
                            "id": price_id,
                            "product": product.id,
                            "amount": self.prices[plan],
                            "currency": self.currency,
                            "interval": "month",
                        }
                    )
                except stripe.StripeError as exc:  # made meanwhile by another process
                    if getattr(exc, "http_status", None) not in (400, 409):
                        raise
            self._made.add(price_id)
        return price_id

    # -- the seam ------------------------------------------------------------------------

    def start_checkout(
        self, *, tenant_id: str, email: str, customer_id: str | None, plan: str
    ) -> CheckoutIntent:
        self.price_id(plan)
        with _errors():
            if customer_id is None:
                customer = self.client.v1.customers.create(
                    params={"email": email, "metadata": {"tenant_id": tenant_id}}
                )
                customer_id = str(customer.id)
            intent = self.client.v1.setup_intents.create(
                params={  # type: ignore[arg-type]  # a TypedDict the literal matches
                    "customer": customer_id,
                    "usage": "off_session",
                    "payment_method_types": ["card"],
                    "metadata": {"tenant_id": tenant_id, "plan": plan},
                }
            )
        return CheckoutIntent(str(intent.id), str(intent.client_secret), str(customer_id))

    def complete_checkout(self, checkout_id: str, *, tenant_id: str) -> SubscriptionView:
        with _errors():
            intent = _d(self.client.v1.setup_intents.retrieve(checkout_id))
            meta = intent.get("metadata") or {}
            if meta.get("tenant_id") != tenant_id:
                raise ProviderError(404, f"checkout_id: no checkout {checkout_id!r} of yours")
            if intent.get("status") != "succeeded" or not intent.get("payment_method"):
                raise ProviderError(
                    402, f"checkout: the card is not confirmed yet ({intent.get('status')})"
                )
            customer_id = str(intent["customer"])
            method = str(intent["payment_method"])
            if not isinstance(intent["payment_method"], str):
                method = str(intent["payment_method"]["id"])
            self.client.v1.payment_methods.attach(method, params={"customer": customer_id})
            self.client.v1.customers.update(
                customer_id, params={"invoice_settings": {"default_payment_method": method}}
            )
            sub = self.client.v1.subscriptions.create(
                params={
                    "customer": customer_id,
                    "items": [{"plan": self.price_id(str(meta["plan"]))}],
                    "metadata": {"tenant_id": tenant_id},
                }
            )
        return _sub_view(sub)

    def change_plan(self, subscription_id: str, plan: str) -> InvoiceView:
        price = self.price_id(plan)
        with _errors():
            sub = _d(self.client.v1.subscriptions.retrieve(subscription_id))
            item = sub["items"]["data"][0]["id"]
            self.client.v1.subscriptions.update(
                subscription_id, params={"items": [{"id": item, "plan": price}]}
            )
            invoice = self.client.v1.invoices.create(
                params={
                    "customer": str(sub["customer"]),
                    "subscription": subscription_id,
                    "pending_invoice_items_behavior": "include",
                }
            )
            data = _d(invoice)
            if data.get("status") in ("draft", "open") and int(data.get("total") or 0) > 0:
                data = _d(self.client.v1.invoices.pay(str(invoice.id)))
        return invoice_view(data)

    def cancel(self, subscription_id: str) -> None:
        with _errors():
            self.client.v1.subscriptions.cancel(subscription_id)

    def subscription(self, subscription_id: str) -> SubscriptionView:
        with _errors():
            return _sub_view(self.client.v1.subscriptions.retrieve(subscription_id))

    def invoices(self, customer_id: str, limit: int = 24) -> list[InvoiceView]:
        with _errors():
            found = self.client.v1.invoices.list(params={"customer": customer_id, "limit": limit})
        return [invoice_view(_d(inv)) for inv in found.data]


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Stripe's errors as ProviderError: a declined card 402, a missing object 404, the
    provider failing 502."""
    try:
        yield
    except stripe.CardError as exc:
        raise ProviderError(402, f"payment: {exc.user_message or 'the card was declined'}") from exc
    except stripe.StripeError as exc:
        status = getattr(exc, "http_status", None)
        if status == 404:
            raise ProviderError(404, "the payment provider does not know this object") from exc
        if status == 402:
            raise ProviderError(402, f"payment: {exc.user_message or 'refused'}") from exc
        raise ProviderError(502, f"payment provider: {exc.user_message or exc}") from exc
