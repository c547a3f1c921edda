"""Billing on localstripe through the portal and the API, on SQLite and PostgreSQL:
checkout → an active plan that drives quotas; a prorated upgrade whose charge is what
localstripe computed; invoices; a failed payment → grace period → downgrade on a manual
clock; payment webhooks verified (Stripe-Signature) and deduplicated by event id; owners
only, one tenant only."""

from __future__ import annotations

import secrets

import httpx
import pytest

from portwright.store import BillingAccount
from portwright.testing import wait_until_sync
from tests.billing._support import (
    DECLINED_CARD,
    card,
    checkout,
    event,
    owner_session,
    provider_invoices,
    signed,
    start_checkout,
)
from tests.billing.conftest import GRACE_S, PRICES, Billed
from tests.customers._support import PASSWORD


def _token(billed: Billed, email: str) -> httpx.Client:
    answer = httpx.post(
        billed.portal.url + "/v1/auth/token", json={"email": email, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return billed.portal.client(authorization=f"Bearer {answer.json()['access_token']}")


def test_checkout_makes_the_plan_active_and_drives_quotas(billed: Billed) -> None:
    http, csrf, email, tenant_id = owner_session(billed)
    store = billed.portal.service.store
    assert store.tenants.get(tenant_id).plan == "starter"
    api = _token(billed, email)
    assert api.get("/v1/usage").json()["jobs_limit"] == 1_000

    done = checkout(billed, http, csrf, "growth")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/app/billing?changed=growth"

    assert store.tenants.get(tenant_id).plan == "growth"
    account = store.billing.get(tenant_id)
    assert account is not None
    assert account.status == "active"
    sub = billed.stripe.v1.subscriptions.retrieve(str(account.subscription_id)).to_dict()
    assert sub["status"] == "active"
    assert sub["metadata"]["tenant_id"] == tenant_id
    assert api.get("/v1/usage").json()["jobs_limit"] == 10_000  # the plan drives the quota

    page = http.get("/app/billing")
    assert page.status_code == 200
    assert 'id="current-plan">growth<' in page.text
    state = api.get("/v1/billing").json()
    assert state["plan"] == "growth"
    assert state["status"] == "active"
    [first] = state["invoices"]
    assert first["status"] == "paid"
    assert first["amount_paid"] == PRICES["growth"]
    assert first["id"] in page.text
    assert "49.00 EUR" in page.text


def test_upgrade_charges_the_proration_localstripe_computes(billed: Billed) -> None:
    http, csrf, email, tenant_id = owner_session(billed)
    assert checkout(billed, http, csrf, "growth").status_code == 303
    store = billed.portal.service.store

    done = http.post("/app/billing/plan", data={"plan": "business", "csrf_token": csrf})
    assert done.status_code == 303, done.text
    assert store.tenants.get(tenant_id).plan == "business"

    account = store.billing.get(tenant_id)
    assert account is not None
    assert account.customer_id
    newest, oldest = provider_invoices(billed, account.customer_id)  # localstripe's own record
    charged = newest["amount_paid"]
    prorated = sum(line["amount"] for line in newest["lines"]["data"] if line["proration"])
    assert newest["status"] == "paid"
    assert prorated < 0
    assert charged == newest["total"]
    # localstripe's rule: the new plan's price less what the last invoice charged
    assert prorated == -oldest["total"] == -PRICES["growth"]
    assert charged == PRICES["business"] - PRICES["growth"]

    state = _token(billed, email).get("/v1/billing").json()
    listed = {inv["id"]: inv for inv in state["invoices"]}
    assert listed[newest["id"]]["proration_total"] == prorated
    assert listed[newest["id"]]["amount_paid"] == charged
    assert listed[oldest["id"]]["amount_paid"] == PRICES["growth"]

    # a downgrade, and the free plan ends the subscription
    assert (
        http.post("/app/billing/plan", data={"plan": "growth", "csrf_token": csrf}).status_code
        == 303
    )
    assert store.tenants.get(tenant_id).plan == "growth"
    same = http.post("/app/billing/plan", data={"plan": "growth", "csrf_token": csrf})
    assert same.status_code == 409
    assert "already on" in same.text
    unknown = http.post("/app/billing/plan", data={"plan": "platinum", "csrf_token": csrf})
    assert unknown.status_code == 422
    assert "plan: unknown plan" in unknown.text
    assert (
        http.post("/app/billing/plan", data={"plan": "starter", "csrf_token": csrf}).status_code
        == 303
    )
    assert store.tenants.get(tenant_id).plan == "starter"
    sub_id = account.subscription_id
    assert billed.stripe.v1.subscriptions.retrieve(str(sub_id)).status == "canceled"


def _renewal_declined(billed: Billed) -> tuple[httpx.Client, str, str, str]:
    """An owner on the growth plan whose month's renewal was declined, reported by the
    provider's signed event: (session, email, tenant id, the open renewal's id)."""
    http, csrf, email, tenant_id = owner_session(billed)
    assert checkout(billed, http, csrf, "growth").status_code == 303
    store = billed.portal.service.store
    account = store.billing.get(tenant_id)
    assert account is not None
    assert account.customer_id
    assert account.subscription_id
    customer = account.customer_id

    # the card starts failing; the month's renewal is charged (localstripe has no test
    # clock: the renewal invoice is made the way Stripe makes it at the period's end)
    declined = card(billed, DECLINED_CARD)
    billed.stripe.v1.payment_methods.attach(declined, params={"customer": customer})
    billed.stripe.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": declined}}
    )
    billed.stripe.v1.invoice_items.create(
        params={"customer": customer, "amount": PRICES["growth"], "currency": "eur",
                "subscription": account.subscription_id, "description": "renewal"}
    )  # fmt: skip
    renewal = billed.stripe.v1.invoices.create(
        params={"customer": customer, "subscription": account.subscription_id}
    )
    unpaid = billed.stripe.v1.invoices.pay(str(renewal.id))  # declined: the invoice stays open
    assert unpaid.status == "open"
    assert unpaid.amount_paid == 0
    # localstripe 1.15 sends no invoice.payment_failed for a card declined on an invoice (its
    # pay path drops the failure); Stripe would. The test sends that event the way Stripe
    # does: localstripe's own unpaid invoice, signed with the payments secret, to the hook.
    _send(billed, "invoice.payment_failed", unpaid.to_dict())
    return http, email, tenant_id, str(renewal.id)


def _send(billed: Billed, kind: str, obj: dict[str, object]) -> str:
    """A signed provider event to the payments hook; its inbox id."""
    body = event(kind, obj, f"evt_{secrets.token_hex(8)}")
    sent = httpx.post(
        billed.portal.url + "/v1/hooks/payments", content=body, headers=signed(billed.secret, body)
    )
    assert sent.status_code == 202, sent.text
    return str(sent.json()["id"])


def _handled(billed: Billed, inbox_id: str) -> str:
    """The handler's result for an inbox row, once it is done."""

    def done() -> str | None:
        rows = [r for r in billed.portal.service.store.inbox.search(source="payments")
                if r.id == inbox_id and r.status == "done"]  # fmt: skip
        return rows[0].result if rows else None

    return str(wait_until_sync(done, timeout=60))


def test_failed_payment_grace_then_downgrade(billed: Billed) -> None:
    http, email, tenant_id, renewal_id = _renewal_declined(billed)
    store = billed.portal.service.store

    def past_due() -> object:
        found = store.billing.get(tenant_id)
        return found if found is not None and found.status == "past_due" else None

    wait_until_sync(past_due, timeout=30)
    account = store.billing.get(tenant_id)
    assert account is not None
    assert account.grace_until is not None
    assert account.grace_until == pytest.approx(billed.clock.now() + GRACE_S, abs=1)
    assert store.tenants.get(tenant_id).plan == "growth"  # kept during the grace period
    subscription_id = str(account.subscription_id)
    # the checkout's own payment event, delivered late (providers do not keep order): the
    # renewal is still owed, so the grace goes on
    [first] = [i for i in provider_invoices(billed, str(account.customer_id))
               if i["id"] != renewal_id]  # fmt: skip
    assert first["status"] == "paid"
    late = _handled(billed, _send(billed, "invoice.payment_succeeded", first))
    assert late == f"paid {first['id']}: still past due on {renewal_id}"
    assert store.billing.get(tenant_id).status == "past_due"  # type: ignore[union-attr]
    mail = billed.portal.wait_message(email, contains="payment")
    assert "failed" in mail["subject"]
    assert "starter" in mail["body"]
    assert "/app/billing" in mail["body"]
    page = http.get("/app/billing")
    assert 'id="grace-banner"' in page.text
    assert "Your last payment failed" in page.text

    billed.clock.advance(GRACE_S - 60)
    assert billed.billing.sweep() == []
    assert store.tenants.get(tenant_id).plan == "growth"
    billed.clock.advance(120)
    assert billed.billing.sweep() == [tenant_id]
    assert store.tenants.get(tenant_id).plan == "starter"
    account = store.billing.get(tenant_id)
    assert account is not None
    assert account.status == "downgraded"
    sub = billed.stripe.v1.subscriptions.retrieve(subscription_id)
    assert sub.status == "canceled"
    assert billed.billing.sweep() == []  # once
    page = http.get("/app/billing")
    assert "Moved to the starter plan" in page.text
    assert 'id="current-plan">starter<' in page.text


def test_paying_the_failed_invoice_ends_the_grace_and_keeps_the_plan(billed: Billed) -> None:
    _, _, tenant_id, renewal_id = _renewal_declined(billed)
    store = billed.portal.service.store
    account = wait_until_sync(
        lambda: (found := store.billing.get(tenant_id)) and found.status == "past_due" and found,
        timeout=30,
    )
    assert isinstance(account, BillingAccount)
    customer = str(account.customer_id)
    good = card(billed, "4242424242424242")
    billed.stripe.v1.payment_methods.attach(good, params={"customer": customer})
    billed.stripe.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": good}}
    )
    paid = billed.stripe.v1.invoices.pay(renewal_id)
    assert paid.status == "paid"
    result = _handled(billed, _send(billed, "invoice.payment_succeeded", paid.to_dict()))
    assert result == "paid: grace period over, plan kept"
    account = store.billing.get(tenant_id)
    assert account is not None
    assert account.status == "active"
    assert account.grace_until is None
    assert store.tenants.get(tenant_id).plan == "growth"
    billed.clock.advance(GRACE_S + 60)
    assert billed.billing.sweep() == []  # nothing to downgrade
    assert store.tenants.get(tenant_id).plan == "growth"


def test_payment_webhooks_are_verified_and_deduplicated(billed: Billed) -> None:
    http, csrf, _, tenant_id = owner_session(billed)
    assert checkout(billed, http, csrf, "growth").status_code == 303
    store = billed.portal.service.store
    account = store.billing.get(tenant_id)
    assert account is not None
    hook = billed.portal.url + "/v1/hooks/payments"
    body = event(
        "invoice.payment_failed",
        {"id": "in_forged", "object": "invoice", "customer": account.customer_id,
         "total": 4900, "currency": "eur"},
        f"evt_{secrets.token_hex(6)}",
    )  # fmt: skip

    wrong = httpx.post(hook, content=body, headers=signed("whsec_not_the_secret", body))
    assert wrong.status_code == 401
    assert "stripe-signature" in wrong.text
    unsigned = httpx.post(hook, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 400
    old = httpx.post(hook, content=body, headers=signed(billed.secret, body, at=1_700_000_000))
    assert old.status_code == 401
    assert "replay refused" in old.text
    altered = body.replace(b"4900", b"4901")
    forged = httpx.post(hook, content=altered, headers={**signed(billed.secret, body)})
    assert forged.status_code == 401
    assert store.billing.get(tenant_id).status == "active"  # type: ignore[union-attr]

    first = httpx.post(hook, content=body, headers=signed(billed.secret, body))
    assert first.status_code == 202, first.text
    again = httpx.post(hook, content=body, headers=signed(billed.secret, body))
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"]

    def processed() -> object:
        # The subscription's change commits with the handler; the inbox row is marked done
        # after it (the processor's own write): wait for both, not the first alone.
        row = store.billing.get(tenant_id)
        if row is None or row.status != "past_due":
            return None
        done = [r for r in store.inbox.search(source="payments") if r.id == first.json()["id"]]
        return done if done and done[0].status != "processing" else None

    wait_until_sync(processed, timeout=60)  # a deadline for a loaded machine (load 20 took >15 s)
    rows = [r for r in store.inbox.search(source="payments") if r.id == first.json()["id"]]
    assert len(rows) == 1
    assert rows[0].status == "done"
    assert rows[0].attempts == 1
    assert rows[0].result is not None
    assert rows[0].result.startswith("past due until")
    # the same event id with another body: refused, not processed
    reused = body.replace(b"in_forged", b"in_other")
    conflict = httpx.post(hook, content=reused, headers=signed(billed.secret, reused))
    assert conflict.status_code == 409


def test_billing_is_for_owners_of_their_own_tenant(billed: Billed) -> None:
    owner_a, csrf_a, email_a, tenant_a = owner_session(billed)
    assert checkout(billed, owner_a, csrf_a, "growth").status_code == 303
    member_email = billed.portal.member(owner_a, csrf_a)
    member, member_csrf = billed.portal.login(member_email)

    page = member.get("/app/billing")
    assert page.status_code == 403
    assert "needs the owner role" in page.text
    posted = member.post("/app/billing/plan", data={"plan": "business", "csrf_token": member_csrf})
    assert posted.status_code == 403
    assert (
        member.post(
            "/app/billing/checkout", data={"plan": "business", "csrf_token": member_csrf}
        ).status_code
        == 403
    )
    assert "/app/billing" not in member.get("/app/").text  # no billing link for members
    member_api = _token(billed, member_email)
    assert member_api.get("/v1/billing").status_code == 403
    assert member_api.post("/v1/billing/plan", json={"plan": "business"}).status_code == 403

    no_csrf = owner_a.post("/app/billing/plan", data={"plan": "business"})
    assert no_csrf.status_code == 403
    assert "CSRF" in no_csrf.text
    anonymous = billed.portal.client().get("/app/billing")
    assert anonymous.status_code == 303
    assert "/app/login" in anonymous.headers["location"]
    assert httpx.get(billed.portal.url + "/v1/billing").status_code == 401

    store = billed.portal.service.store
    assert store.tenants.get(tenant_a).plan == "growth"  # nothing a member did changed it

    # another tenant's owner: sees none of A's invoices, cannot complete A's checkout
    owner_b, csrf_b, email_b, tenant_b = owner_session(billed)
    own = owner_b.get("/app/billing")
    assert own.status_code == 200
    assert "No invoices yet." in own.text
    a_invoices = provider_invoices(billed, str(store.billing.get(tenant_a).customer_id))  # type: ignore[union-attr]
    assert a_invoices
    assert all(inv["id"] not in own.text for inv in a_invoices)
    # a fresh tenant C's open checkout, completed by B: a 404, nothing changes
    owner_c, csrf_c, _, tenant_c = owner_session(billed)
    checkout_c, _ = start_checkout(owner_c, csrf_c, "business")
    billed.stripe.v1.setup_intents.confirm(
        checkout_c, params={"payment_method": card(billed, "4242424242424242")}
    )
    stolen = owner_b.post(
        f"/app/billing/checkout/{checkout_c}/complete", data={"csrf_token": csrf_b}
    )
    assert stolen.status_code == 404
    api_b = _token(billed, email_b)
    assert api_b.post(f"/v1/billing/checkout/{checkout_c}/complete").status_code == 404
    assert store.tenants.get(tenant_b).plan == "starter"
    assert store.tenants.get(tenant_c).plan == "starter"
    assert api_b.get("/v1/billing").json()["invoices"] == []
    # C completes its own
    done = owner_c.post(f"/app/billing/checkout/{checkout_c}/complete", data={"csrf_token": csrf_c})
    assert done.status_code == 303
    assert store.tenants.get(tenant_c).plan == "business"
    assert email_a  # A's owner is untouched throughout
