"""The portal in a real Chromium: sign up → verify by the link read from the sandbox inbox
(delivered over SMTP) → sign in; live job status over SSE and the answer prompt; and a
screenshot of every page at desktop (1440 px) and phone (390 px) widths."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from portwright.gateway import issue_key
from portwright.testing import wait_until_sync
from tests.customers._support import PASSWORD, Portal, login_in_browser, signup_in_browser
from tests.customers.conftest import SHOTS
from tests.customers.test_customer_loop import _booking, _submit
from tests.support import headless_chromium

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)  # a loaded machine: polling expectations, with a deadline


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium (the machine's) for this module: its event loop lives only as long."""
    SHOTS.mkdir(exist_ok=True)
    with headless_chromium() as chromium:
        yield chromium


WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


def _page(browser: Browser, width: str) -> Page:
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h})
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def test_signup_verify_login_and_answer_live(browser: Browser, portal: Portal) -> None:
    """A person signs up, opens the emailed link, signs in; a job that asks them appears
    live (no reload), they answer in the prompt, and its new state arrives live too."""
    page = _page(browser, "desktop")
    org, email = f"tide-{secrets.token_hex(2)}", f"grace-{secrets.token_hex(3)}@example.test"
    signup_in_browser(page, portal, org, email)
    link = portal.link_in(portal.wait_message(email, contains="/app/verify"))
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Email confirmed")
    page.click("a.button")
    expect(page).to_have_url(f"{portal.url}/app/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{portal.url}/app/")
    expect(page.locator("header .badge")).to_contain_text(org)
    expect(page.locator("#live-dot.on")).to_be_visible()
    page.evaluate("window.__noReload = true")

    user = portal.service.store.customers.user_by_email(email)
    assert user is not None
    key = issue_key(portal.service.store, tenant=org)
    api = portal.client(authorization=f"Bearer {key.key}")
    job_id = api.post(
        "/v1/jobs", json={"adapter": "asking", "input": {"question": "Send the application?"}}
    ).json()["id"]
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row).to_be_visible()
    expect(page.locator("section.attention")).to_contain_text("asking")
    assert page.evaluate("window.__noReload") is True  # updated in place, not reloaded

    page.click(f"a[href='/app/jobs/{job_id}']")
    expect(page.locator("#prompt h2")).to_have_text("Send the application?")
    page.evaluate("window.__noReload = true")
    page.fill("#prompt input[name=value]", "yes please")
    page.click("#prompt button[type=submit]")
    expect(page.locator("#job-state")).to_have_text("SUCCEEDED", timeout=90_000)
    wait_until_sync(lambda: portal.service.store.jobs.get(job_id).status == "succeeded")
    assert portal.service.store.jobs.get(job_id).output == {"approved": "yes please"}


def test_screenshots_of_every_page(browser: Browser, portal: Portal) -> None:
    """Every portal page at desktop and phone widths, saved for a person to look at; each
    page renders without horizontal scrolling at phone width."""
    owner, tenant_id = portal.owner(f"harbour-{secrets.token_hex(2)}")
    org = portal.service.store.tenants.get(tenant_id).name
    http, csrf = portal.login(owner)
    portal.member(http, csrf)
    http.post(
        "/app/credentials", data={"name": "consulate-login", "value": "pw", "csrf_token": csrf}
    )
    key = issue_key(portal.service.store, tenant=org, name="ci")
    api = portal.client(authorization=f"Bearer {key.key}")
    waiting = api.post(
        "/v1/jobs",
        json={
            "adapter": "asking",
            "input": {"question": "Approve the application to Nimbus Labs (Senior Engineer)?"},
        },
    ).json()["id"]
    wait_until_sync(lambda: portal.service.store.jobs.get(waiting).status == "waiting")
    api.post("/v1/jobs", json={"adapter": "asking", "input": {"timeout_s": 0.5}})

    for width in WIDTHS:
        page = _page(browser, width)
        shots: list[tuple[str, str]] = [
            ("signup", "/app/signup"),
            ("login", "/app/login"),
            ("forgot", "/app/forgot"),
            ("reset", "/app/reset?token=x"),
            ("verify-bad", "/app/verify?token=nope"),
        ]
        for name, path in shots:
            page.goto(portal.url + path)
            _shoot(page, f"{width}-{name}")
        page.goto(portal.url + "/app/signup")
        page.fill("input[name=organisation]", "X")
        page.fill("input[name=email]", "nope")
        page.fill("input[name=password]", "short")
        page.click("button[type=submit]")
        expect(page.locator(".field-error")).to_have_count(3)
        _shoot(page, f"{width}-signup-error")
        login_in_browser(page, portal, owner)
        for name, path in [
            ("jobs", "/app/"),
            ("job-prompt", f"/app/jobs/{waiting}"),
            ("keys", "/app/keys"),
            ("credentials", "/app/credentials"),
            ("members", "/app/members"),
            ("preferences", "/app/preferences"),
            ("not-found", "/app/jobs/job_nope"),
        ]:
            page.goto(portal.url + path)
            _shoot(page, f"{width}-{name}")
        page.goto(portal.url + "/app/keys")
        page.fill("input[name=name]", "laptop")
        page.click("form.row button[type=submit]")
        expect(page.locator("#new-key")).to_have_text(re.compile(r"^pw_"))
        _shoot(page, f"{width}-keys-created")
        page.context.close()


def _shoot(page: Page, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_the_customer_types_the_consulate_code_in_chromium_within_the_hold(
    browser: Browser, portal: Portal
) -> None:
    """The booking's hold needs the portal's one-time code: the customer, told by SMS, opens
    the job in the portal and types the code in the browser while the hold lasts; the job's
    page shows the booking confirmed, and an SMS says so. The prompt at desktop and phone
    widths."""
    owner, _ = portal.owner()
    http, csrf = portal.login(owner)
    phone = f"+4917{secrets.randbelow(10**8):08d}"
    prefs = {
        "csrf_token": csrf,
        "phone": phone,
        "answer_needed:sms": "on",
        "job_succeeded:sms": "on",  # "booking confirmed"
    }
    assert http.post("/app/preferences", data=prefs).status_code == 303
    saved = {"name": "consulate-login", "value": "pw-41", "csrf_token": csrf}
    assert http.post("/app/credentials", data=saved).status_code == 303
    pages = {width: _page(browser, width) for width in WIDTHS}
    try:
        for page in pages.values():  # signed in before the hold starts: its minutes are short
            login_in_browser(page, portal, owner)

        job_id = _submit(portal, owner, "consulate", _booking(portal, 41, 35.0))
        sms = portal.wait_message(phone, contains="one-time code", channel="sms", timeout=90)
        assert f"/app/jobs/{job_id}" in sms["body"]
        code = portal.wait_message("user41@example.test", channel="email")["code"]
        for width, page in pages.items():
            page.goto(f"{portal.url}/app/jobs/{job_id}")
            expect(page.locator("#prompt h2")).to_contain_text("code")
            expect(page.locator("#prompt input[name=value]")).to_have_attribute(
                "inputmode", "numeric"
            )
            # a hold lasts seconds: its deadline to the second
            expect(page.locator("#prompt")).to_contain_text(
                re.compile(r"Answer before \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
            )
            _shoot(page, f"{width}-job-code-prompt")
        page = pages["phone"]
        page.fill("#prompt input[name=value]", code)
        page.click("#prompt button[type=submit]")
        expect(page).to_have_url(re.compile(r"\?answered=otp$"))
        expect(page.locator("#job-state")).to_have_text("CONFIRMED", timeout=90_000)
        expect(page.locator("#prompt")).to_have_count(0)
        expect(page.locator("ol.timeline li").first).to_contain_text("CONFIRMED")  # newest first
        _shoot(page, "phone-job-code-confirmed")
        done = portal.service.store.jobs.get(job_id)
        assert done.status == "succeeded"
        assert done.output["reference"]
        confirmed = portal.wait_message(phone, contains=f"Job {job_id} succeeded", channel="sms")
        assert f"/app/jobs/{job_id}" in confirmed["body"]
        states = [e.to_state for e in portal.service.store.jobs.events(job_id)]
        assert states.count("OTP_SUBMITTED") == 1  # the one code, typed once, within the hold
        assert states.count("HOLDING") == 1  # ... of the first hold: never back to scanning
    finally:
        for page in pages.values():
            page.context.close()
