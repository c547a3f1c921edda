"""Billing through a payment provider: checkout → subscription → the tenant's plan,
prorated plan changes, invoices, failed payments with a grace period, signed payment
webhooks. `StripeProvider` speaks Stripe's API (Stripe itself or localstripe)."""

from portwright.billing._api import billing_router
from portwright.billing._handler import BillingHandler
from portwright.billing._provider import (
    BillingProvider,
    CheckoutIntent,
    InvoiceLine,
    InvoiceView,
    ProviderError,
    StripeProvider,
    SubscriptionView,
)
from portwright.billing._service import Billing, BillingError, BillingSweeper, billing_from

__all__ = [
    "Billing",
    "BillingError",
    "BillingHandler",
    "BillingProvider",
    "BillingSweeper",
    "CheckoutIntent",
    "InvoiceLine",
    "InvoiceView",
    "ProviderError",
    "StripeProvider",
    "SubscriptionView",
    "billing_from",
    "billing_router",
]
