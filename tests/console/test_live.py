"""Real Chromium against the running console: the escalation loop, live, end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from portwright.store import JobRecord
from tests.console._support import PASSWORD, Console, run
from tests.console.conftest import SHOTS


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, console: Console, email: str) -> None:
    page.goto(f"{console.url}/console/escalations")
    expect(page).to_have_url(f"{console.url}/console/login?next=/console/escalations")
    page.screenshot(path=SHOTS / "login.png")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{console.url}/console/escalations")


def patch_live(page: Page, console: Console, job_id: str, key: str, new: str, why: str) -> None:
    """Wait on the queue for the job's next escalation (live), open it, claim it, patch `key`."""
    row = page.locator(f"tr.esc:has(a[href='/console/jobs/{job_id}'])")
    expect(row).to_be_visible(timeout=90_000)
    assert page.evaluate("window.__noReload") is True  # the row arrived without a reload
    page.screenshot(path=SHOTS / f"escalations-live-{key}.png")
    row.locator("td.reason a").click()
    expect(page.locator("#last-selector")).to_contain_text(f"{key} = ")
    # the DOM snapshot of the changed page, in its sandboxed frame
    expect(page.frame_locator("iframe.dom").first.locator("header")).to_be_visible()
    page.screenshot(path=SHOTS / f"escalation-{key}.png", full_page=True)
    page.click("#claim")
    expect(page.locator("#esc-status")).to_contain_text("claimed by op:")
    page.select_option("#selector-key", key)
    page.fill("#new-selector", new)
    page.fill("input[name=reason]", why)
    page.click("#patch")
    expect(page.locator("#esc-status")).to_contain_text("resolved", timeout=60_000)


def test_an_operator_patches_the_booking_portals_selectors_live_and_it_is_confirmed(
    console: Console, page: Page
) -> None:
    """Scenario 1: the consulate switches its markup; each page-changed escalation appears in
    the queue without a reload; the operator patches the selector in the console, the
    booking resumes and is CONFIRMED (booked once); the audit page shows before and after."""
    svc = console.service
    sign_in(page, console, console.operator("operator"))
    expect(page.locator("#live-dot.on")).to_be_visible(timeout=10_000)
    page.evaluate("window.__noReload = true")
    page.screenshot(path=SHOTS / "escalations-empty.png")

    world = console.world
    world.chaos("consulate").update({"dom_version": 2})
    tenant = svc.store.tenants.ensure("acme-live")
    console.console_app.state.vault.put(tenant.id, "user7@example.test", "pw-7")
    job: JobRecord = run(
        svc.submit(
            tenant_id=tenant.id,
            adapter="consulate",
            input={
                "portal_url": world.url("consulate"),
                "inbox_url": world.url("inbox"),
                "account_email": "user7@example.test",
                "center": "LON",
                "visa_type": "tourist",
                "otp_source": "inbox",
                "scan_interval_s": 0.5,
                "deadline_s": 300.0,
                "payment_wait_s": 1.0,
            },
        )
    )
    try:
        patch_live(page, console, job.id, "csrf", "meta[name=csrf-token]::attr(content)",
                   "portal moved the CSRF token to a meta tag")  # fmt: skip
        page.goto(f"{console.url}/console/escalations")
        page.evaluate("window.__noReload = true")
        patch_live(page, console, job.id, "slot_ids", "ul.slot-list li.slot-item::attr(data-id)",
                   "portal lists slots as a ul now")  # fmt: skip
        expect(page.locator("#job-state")).to_have_text("CONFIRMED", timeout=120_000)
        page.screenshot(path=SHOTS / "escalation-resolved.png", full_page=True)
    finally:
        world.chaos("consulate").update({"dom_version": 1})
    done = run(svc.get(job.id))
    assert done.status == "succeeded"
    assert done.output
    assert done.output["reference"]
    ledger = world.ledger("consulate")
    assert not ledger.duplicates("booking")

    page.goto(f"{console.url}/console/jobs/{job.id}")
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("OPERATOR_ACTION_REQUIRED")
    expect(timeline).to_contain_text("CONFIRMED")
    expect(page.frame_locator("iframe.dom").last.locator("header")).to_be_visible()
    job_input = page.locator("pre.json").first
    expect(job_input).to_contain_text('"card_number": "••••••"')
    expect(job_input).to_contain_text('"otp_source": "inbox"')
    page.screenshot(path=SHOTS / "job.png", full_page=True)
    page.locator("#evidence").screenshot(path=SHOTS / "job-dom-snapshots.png")

    page.goto(f"{console.url}/console/audit?action=selectors.patch")
    patches = page.locator("tr[data-action='selectors.patch']")
    expect(patches.first.locator("pre.before")).to_contain_text('"slot_ids": "table#slots tr.slot')
    expect(patches.first.locator("pre.after")).to_contain_text("ul.slot-list li.slot-item")
    expect(patches.first.locator("pre.after")).not_to_contain_text("csrf")
    expect(patches.nth(1).locator("pre.before")).to_contain_text('"csrf": "input[name=csrf]')
    expect(patches.nth(1).locator("pre.after")).to_contain_text('"csrf": "meta[name=csrf-token]')
    page.screenshot(path=SHOTS / "audit.png", full_page=True)
    page.goto(f"{console.url}/console/audit?action=escalation.patch")
    rows = page.locator("tr[data-action='escalation.patch']")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("pre.before")).to_contain_text('"status": "claimed"')
    expect(rows.first.locator("pre.after")).to_contain_text('"slot_ids"')

    page.goto(f"{console.url}/console/")
    expect(page.locator(".tile.good b")).not_to_have_text("0")
    page.screenshot(path=SHOTS / "dashboard.png", full_page=True)
    page.goto(f"{console.url}/console/jobs?q=user7")
    expect(page.locator(f"tr[data-job='{job.id}']")).to_be_visible()
    page.screenshot(path=SHOTS / "jobs.png", full_page=True)
