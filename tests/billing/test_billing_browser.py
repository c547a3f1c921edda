"""The billing page in a real Chromium, on SQLite and PostgreSQL: subscribe with the card
field (localstripe's stand-in for Stripe.js confirms the SetupIntent in the browser), see
the plan active and the invoice, upgrade, see the grace banner after a failed payment;
screenshots of each state at desktop (1440 px) and phone (390 px) widths in /tmp."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from portwright.testing import wait_until_sync
from tests.billing._support import event, fill_card, signed
from tests.billing.conftest import Billed
from tests.customers._support import PASSWORD
from tests.support import headless_chromium

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)
SHOTS = Path("/tmp/portwright-billing-shots")
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(exist_ok=True)
    with headless_chromium() as chromium:
        yield chromium


def _signed_in(browser: Browser, billed: Billed, email: str, width: str) -> Page:
    w, h = WIDTHS[width]
    page = browser.new_context(viewport={"width": w, "height": h}).new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{billed.portal.url}/app/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{billed.portal.url}/app/")
    return page


def _shots(browser: Browser, billed: Billed, email: str, name: str, path: str) -> None:
    for width in WIDTHS:
        page = _signed_in(browser, billed, email, width)
        page.goto(f"{billed.portal.url}{path}")
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {width}: {overflow}px wider than the screen"
        page.context.close()


def test_subscribe_upgrade_and_grace_in_chromium(browser: Browser, billed: Billed) -> None:
    email, tenant_id = billed.portal.owner(f"shop-{secrets.token_hex(2)}")
    store = billed.portal.service.store
    _shots(browser, billed, email, "billing-new", "/app/billing")

    page = _signed_in(browser, billed, email, "desktop")
    page.click("a[href='/app/billing']")
    expect(page.locator("#current-plan")).to_have_text("starter")
    page.locator(".plan[data-plan=growth] button").click()
    expect(page.locator("h1")).to_have_text("Subscribe to growth")
    card = page.locator("#card-element")
    expect(card.locator("input")).to_have_count(5)  # localstripe's Stripe.js card field
    page.screenshot(path=str(SHOTS / "checkout-desktop.png"), full_page=True)
    fill_card(card)
    page.click("#pay")
    expect(page).to_have_url(f"{billed.portal.url}/app/billing?changed=growth")
    expect(page.locator("#current-plan")).to_have_text("growth")
    expect(page.locator("#invoices tbody tr")).to_have_count(1)
    expect(page.locator("#invoices")).to_contain_text("49.00 EUR")
    assert store.tenants.get(tenant_id).plan == "growth"

    page.locator(".plan[data-plan=business] button").click()
    expect(page.locator("#current-plan")).to_have_text("business")
    expect(page.locator("#invoices tbody tr")).to_have_count(2)
    expect(page.locator("#invoices")).to_contain_text("150.00 EUR")  # 199 less 49 unused
    expect(page.locator("#invoices")).to_contain_text("proration -49.00")
    _shots(browser, billed, email, "billing-active", "/app/billing")

    account = store.billing.get(tenant_id)
    assert account is not None
    body = event(
        "invoice.payment_failed",
        {"id": "in_renewal", "customer": account.customer_id, "total": 19900, "currency": "eur"},
        f"evt_{secrets.token_hex(6)}",
    )
    hook = billed.portal.url + "/v1/hooks/payments"
    assert httpx.post(hook, content=body, headers=signed(billed.secret, body)).status_code == 202
    wait_until_sync(
        lambda: getattr(store.billing.get(tenant_id), "status", None) == "past_due", timeout=15
    )
    page.reload()
    expect(page.locator("#grace-banner")).to_contain_text("Your last payment failed")
    _shots(browser, billed, email, "billing-grace", "/app/billing")
    page.context.close()
