"""The new portal pages in a real Chromium at desktop (1440 px) and phone (390 px) widths:
the intake form (waiting order, refused fields, saved), reports, usage and webhook
endpoints, and a job waiting for intake. Each renders without sideways scrolling; the
screenshots (in /tmp/portwright-portal-shots) are for a person to look at."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld, captcha, directories, inbox, mail
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.customers._orders import CALM, PROFILE, bearer, serve_orders
from tests.customers._support import PASSWORD, Portal
from tests.support import headless_chromium

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)
SHOTS = Path("/tmp/portwright-portal-shots")  # screenshots for a person to look at
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    specs = [*inbox.specs(), *mail.specs(), *captcha.specs(), *directories.specs()]
    with SandboxWorld(specs, seed=6) as w:
        w.context("captcha-solver").options["solve_time_s"] = 0.1
        yield w


@pytest.fixture
def portal(
    settings: Settings, world: SandboxWorld, service_for: Callable[..., JobService]
) -> Iterator[Portal]:
    yield from serve_orders(settings, world, service_for)


@pytest.fixture
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(exist_ok=True)
    with headless_chromium() as chromium:
        yield chromium


def _shoot(page: Page, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def _login(page: Page, portal: Portal, email: str) -> None:
    page.goto(f"{portal.url}/app/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1").first).to_contain_text("Jobs")


def test_new_pages_at_desktop_and_phone_widths(browser: Browser, portal: Portal) -> None:
    owner, _ = portal.owner()
    api = portal.client(**bearer(portal, owner))
    store = portal.service.store
    order = {
        "adapter": "directory-submission",
        "input": {"plan": 50, "directories": CALM, "poll_s": 0.2,
                  "directories_url": portal.world.url("directories")},
    }  # fmt: skip
    waiting = api.post("/v1/jobs", json=order).json()["id"]
    wait_until_sync(lambda: store.jobs.get(waiting).state == "WAITING_FOR_INTAKE", timeout=30)

    for width, (w, h) in WIDTHS.items():
        context = browser.new_context(viewport={"width": w, "height": h})
        page = context.new_page()
        page.set_default_timeout(30_000)
        _login(page, portal, owner)
        page.goto(f"{portal.url}/app/jobs/{waiting}")
        _shoot(page, f"{width}-job-waiting-for-intake")
        page.goto(f"{portal.url}/app/intake")
        expect(page.locator("#waiting-orders")).to_contain_text(waiting)
        _shoot(page, f"{width}-intake-empty")
        page.fill("[name=name]", PROFILE["name"])
        page.fill("[name=website]", "not a url")
        page.click("form.intake button[type=submit]")
        expect(page.locator(".field-error[data-field=phone]")).to_be_visible()
        expect(page.locator(".field-error[data-field=website]")).to_be_visible()
        expect(page.locator("[name=name]")).to_have_value(PROFILE["name"])
        _shoot(page, f"{width}-intake-refused")
        page.goto(f"{portal.url}/app/usage")
        _shoot(page, f"{width}-usage")
        page.goto(f"{portal.url}/app/webhooks")
        page.fill("[name=url]", portal.receiver.url)
        page.fill("[name=topics]", "job.*")
        page.click("form.row button[type=submit]")
        expect(page.locator("#new-secret")).to_contain_text("whsec_")
        _shoot(page, f"{width}-webhooks-created")
        context.close()

    http, csrf = portal.login(owner)
    flat = {k: v for k, v in PROFILE.items() if k != "address"}
    flat |= {f"address.{k}": v for k, v in PROFILE["address"].items()}
    assert http.post("/app/intake/business-profile", data={**flat, "csrf_token": csrf}).is_redirect
    wait_until_sync(lambda: store.jobs.get(waiting).status == "succeeded", timeout=120)

    for width, (w, h) in WIDTHS.items():
        context = browser.new_context(viewport={"width": w, "height": h})
        page = context.new_page()
        _login(page, portal, owner)
        page.goto(f"{portal.url}/app/intake/business-profile?saved=1")
        expect(page.locator(".flash.good")).to_be_visible()
        _shoot(page, f"{width}-intake-saved")
        page.goto(f"{portal.url}/app/reports")
        expect(page.locator(f"#report-{waiting}")).to_be_visible()
        _shoot(page, f"{width}-reports")
        page.goto(f"{portal.url}/app/usage")
        _shoot(page, f"{width}-usage-used")
        page.goto(f"{portal.url}/app/webhooks")
        _shoot(page, f"{width}-webhooks")
        context.close()
