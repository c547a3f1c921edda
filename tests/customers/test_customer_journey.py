"""The customer's whole path in a real Chromium (issue 17's "done when"), on SQLite and
PostgreSQL: sign up → verify by the link read from the sandbox SMTP inbox → sign in →
subscribe on localstripe (its Stripe.js card field) → the plan is active → the intake form
refuses missing fields by name, then saves → a directory order runs → the "report ready"
email → the report downloaded from the portal."""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.billing._support import fill_card
from tests.customers._orders import (
    CALM,
    PROFILE,
    bearer,
    billed_orders,
    directory_order,
    paying_world,
)
from tests.customers._support import Portal, login_in_browser, signup_in_browser
from tests.support import headless_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect.set_options(timeout=60_000)  # a loaded machine: polling expectations, with a deadline


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    yield from paying_world(seed=9)


@pytest.fixture
def journey(
    settings: Settings, world: SandboxWorld, service_for: Callable[..., JobService]
) -> Iterator[Portal]:
    yield from billed_orders(settings, world, service_for)


def _fill_intake(page: Page, **skip: bool) -> None:
    values = {k: v for k, v in PROFILE.items() if k != "address"}
    values |= {f"address.{k}": v for k, v in PROFILE["address"].items()}
    for name, value in values.items():
        page.fill(f"[name='{name}']", "" if skip.get(name.replace(".", "_")) else value)


def test_sign_up_pay_fill_the_intake_order_and_download_the_report(journey: Portal) -> None:
    portal = journey
    store = portal.service.store
    org, email = f"bake-{secrets.token_hex(2)}", f"baker-{secrets.token_hex(3)}@example.test"
    with headless_chromium() as browser:
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.set_default_timeout(60_000)
        # Sign up, verify by the emailed link, sign in.
        signup_in_browser(page, portal, org, email)
        page.goto(portal.link_in(portal.wait_message(email, contains="/app/verify")))
        expect(page.locator("h1")).to_have_text("Email confirmed")
        login_in_browser(page, portal, email)
        user = store.customers.user_by_email(email)
        assert user is not None
        tenant_id = user.tenant_id

        # Subscribe on localstripe: the plan is active.
        page.click("a[href='/app/billing']")
        expect(page.locator("#current-plan")).to_have_text("starter")
        page.locator(".plan[data-plan=growth] button").click()
        card = page.locator("#card-element")
        expect(card.locator("input")).to_have_count(5)
        fill_card(card)
        page.click("#pay")
        # Paid: straight on to the intake form the directory orders need.
        expect(page).to_have_url(f"{portal.url}/app/intake/business-profile?paid=growth")
        expect(page.locator("#paid")).to_contain_text("Payment received")
        assert store.tenants.get(tenant_id).plan == "growth"

        # The intake form: missing fields refused by name, nothing stored; then saved.
        _fill_intake(page, phone=True, hours=True)
        page.click("button[type=submit]")
        expect(page.locator("[data-field=phone]")).to_contain_text("phone")
        expect(page.locator("[data-field=hours]")).to_contain_text("hours")
        assert store.intake.get(tenant_id, "business-profile") is None
        _fill_intake(page)
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/app/intake/business-profile\?saved=\d+$"))
        assert store.intake.get(tenant_id, "business-profile") is not None

        # A directory order (no profile of its own: the intake's) runs to its end.
        api = httpx.Client(base_url=portal.url, headers=bearer(portal, email), timeout=30)
        with api:
            created = api.post("/v1/jobs", json=directory_order(portal))
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        wait_until_sync(lambda: store.jobs.get(job_id).status == "succeeded", timeout=180)

        # "Report ready" by email; its link opens the reports page; the CSV downloads.
        message = portal.wait_message(email, contains=f"Report ready: order {job_id}")
        link = next(w for w in message["body"].split() if w.endswith("/app/reports"))
        assert urlsplit(link).netloc == urlsplit(portal.url).netloc
        page.goto(link)
        expect(page.locator(f"a[href='/app/reports/{job_id}.csv']")).to_be_visible()
        with page.expect_download() as download:
            page.click(f"a[href='/app/reports/{job_id}.csv']")
        path = download.value.path()
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        assert sorted(r["item"] for r in rows) == sorted(CALM), rows
