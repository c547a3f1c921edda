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


def test_operator_patches_a_selector_live_and_the_job_succeeds(
    console: Console, page: Page
) -> None:
    """An escalation appears without a reload; the selector patch resumes the job to success,
    and the audit page shows the patch with before and after."""
    svc = console.service
    sign_in(page, console, console.operator("operator"))
    expect(page.locator("#live-dot.on")).to_be_visible(timeout=10_000)
    page.evaluate("window.__noReload = true")
    page.screenshot(path=SHOTS / "escalations-empty.png")

    console.world.context("echo").options["markup_class"] = "value-v2"
    tenant = svc.store.tenants.ensure("acme-live")
    job: JobRecord = run(
        svc.submit(
            tenant_id=tenant.id,
            adapter="echo",
            input={"url": console.world.url("echo"), "key": "live", "password": "x"},
        )
    )
    row = page.locator(f"tr.esc:has(a[href='/console/jobs/{job.id}'])")
    expect(row).to_be_visible(timeout=60_000)
    assert page.evaluate("window.__noReload") is True  # the row arrived without a reload
    page.screenshot(path=SHOTS / "escalations-live.png")

    row.locator("td.reason a").click()
    expect(page.locator("#last-selector")).to_have_text("value = p.v")
    expect(page.frame_locator("iframe.dom").first.locator("p")).to_have_text("hello live")
    page.screenshot(path=SHOTS / "escalation.png", full_page=True)
    page.click("#claim")
    expect(page.locator("#esc-status")).to_contain_text("claimed by op:")
    page.select_option("#selector-key", "value")
    page.fill("#new-selector", "p.value-v2")
    page.fill("input[name=reason]", "portal moved to v2 markup")
    page.click("#patch")
    expect(page.locator("#job-state")).to_have_text("SUCCEEDED", timeout=30_000)
    expect(page.locator("#esc-status")).to_contain_text("resolved")
    page.screenshot(path=SHOTS / "escalation-resolved.png", full_page=True)
    assert run(svc.get(job.id)).output == {"value": "hello live", "count": 1}

    page.goto(f"{console.url}/console/jobs/{job.id}")
    expect(page.locator("ol.timeline")).to_contain_text("OPERATOR_ACTION_REQUIRED")
    assert "hello live" in page.locator("pre.json").nth(1).inner_text()
    page.screenshot(path=SHOTS / "job.png", full_page=True)

    page.goto(f"{console.url}/console/audit?action=selectors.patch")
    patch = page.locator("tr[data-action='selectors.patch']").first
    expect(patch.locator("pre.before")).to_contain_text('"value": "p.v"')
    expect(patch.locator("pre.after")).to_contain_text('"value": "p.value-v2"')
    page.goto(f"{console.url}/console/audit")
    expect(page.locator("tr[data-action='escalation.patch']")).to_have_count(1)
    page.screenshot(path=SHOTS / "audit.png", full_page=True)

    page.goto(f"{console.url}/console/")
    expect(page.locator(".tile.good b")).not_to_have_text("0")
    page.screenshot(path=SHOTS / "dashboard.png", full_page=True)
    page.goto(f"{console.url}/console/jobs?q=live")
    expect(page.locator(f"tr[data-job='{job.id}']")).to_be_visible()
    page.screenshot(path=SHOTS / "jobs.png", full_page=True)
