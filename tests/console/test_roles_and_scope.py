"""Roles, CSRF, tenant scope, login limits, and the fan-out job page (HTTP and Chromium)."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import httpx
from playwright.sync_api import Browser, expect

from portwright.testing import EchoAdapter, wait_until
from tests.console._support import PASSWORD, Console, csrf_in, run
from tests.console.conftest import SHOTS


def test_a_viewer_can_read_but_cannot_act(console: Console) -> None:
    """A viewer sees pages but every action answers 403, even with a valid CSRF token."""
    http, csrf = console.client(console.operator("viewer"))
    with closing(http):
        assert http.get("/console/jobs").status_code == 200
        refused = http.post("/console/portals/echo/pause", data={"csrf_token": csrf})
        assert refused.status_code == 403
        assert "operator role" in refused.text
        assert not console.service.store.portals.get("echo").paused


def test_a_post_without_the_csrf_token_is_refused(console: Console) -> None:
    """An operator's POST without (or with a wrong) CSRF token is refused with 403."""
    http, csrf = console.client(console.operator("operator"))
    with closing(http):
        assert http.post("/console/portals/echo/pause", data={}).status_code == 403
        wrong = http.post("/console/portals/echo/pause", data={"csrf_token": csrf + "x"})
        assert wrong.status_code == 403
        assert not console.service.store.portals.get("echo").paused
        done = http.post("/console/portals/echo/pause", data={"csrf_token": csrf})
        assert done.status_code == 303
        assert console.service.store.portals.get("echo").paused
        http.post("/console/portals/echo/resume", data={"csrf_token": csrf})
        assert not console.service.store.portals.get("echo").paused


def test_signed_out_visitors_are_sent_to_login(console: Console) -> None:
    """Signed-out page views redirect to the login form; signed-out POSTs answer 401."""
    with httpx.Client(base_url=console.url, timeout=20) as http:
        assert http.get("/console/jobs").headers["location"] == "/console/login?next=/console/jobs"
        assert http.post("/console/jobs/x/cancel").status_code == 401
        assert http.get("/console/live").status_code == 401


def test_login_failures_are_rate_limited(console: Console) -> None:
    """After ten wrong passwords for an address, even the right one answers 429 for a while."""
    email = console.operator("viewer")
    with httpx.Client(base_url=console.url, timeout=20) as http:
        token = csrf_in(http.get("/console/login").text)
        form = {"email": email, "csrf_token": token}
        codes = [
            http.post("/console/login", data={**form, "password": "nope nope"}).status_code
            for _ in range(10)
        ]
        assert set(codes) == {401}
        blocked = http.post("/console/login", data={**form, "password": PASSWORD})
        assert blocked.status_code == 429
    console.reset_login_limits()


def test_a_tenant_operator_never_sees_another_tenants_jobs_events_or_evidence(
    console: Console, browser: Browser
) -> None:
    """An operator limited to tenant A gets 404 for B's job, events and evidence; lists omit B."""
    svc = console.service
    store = svc.store
    a = store.tenants.ensure("tenant-a")
    b = store.tenants.ensure("tenant-b")
    url = console.world.url("echo")
    console.world.context("echo").options["markup_class"] = "value-v2"
    job_a = run(svc.submit(tenant_id=a.id, adapter="echo", input={"url": url, "key": "aa"}))
    job_b = run(svc.submit(tenant_id=b.id, adapter="echo", input={"url": url, "key": "bb"}))
    for job in (job_a, job_b):  # each ends, or parks with HTML evidence, by the selector map
        run(
            wait_until(
                lambda j=job: store.jobs.get(j.id).status in ("succeeded", "waiting"), timeout=30
            )
        )
    svc.rt.blobs.put("test/b.png", b"\x89PNG-secret-of-b", content_type="image/png")
    evidence_b = store.jobs.add_evidence(
        job_id=job_b.id, tenant_id=b.id, step="fetch", kind="screenshot",
        blob_key="test/b.png", content_type="image/png", size=16, meta={},
    )  # fmt: skip
    http, _ = console.client(console.operator("operator", tenant="tenant-a"))
    with closing(http):
        listing = http.get("/console/jobs").text
        assert job_a.id in listing
        assert job_b.id not in listing
        assert f'data-job="{job_b.id}"' not in http.get(f"/console/jobs?q={job_b.id}").text
        assert http.get(f"/console/jobs/{job_b.id}").status_code == 404
        assert http.get(f"/console/evidence/{evidence_b}").status_code == 404
        assert http.get(f"/console/jobs/{job_b.id}/report.json").status_code == 404
        assert job_b.id not in http.get("/console/escalations?show=all").text
        assert job_b.id not in http.get("/console/audit").text
        assert http.get(f"/console/jobs/{job_a.id}").status_code == 200

    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{console.url}/console/login")
        page.fill("input[name=email]", console.operator("viewer", tenant="tenant-a"))
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{console.url}/console/jobs")
        expect(page.locator(f"tr[data-job='{job_a.id}']")).to_be_visible()
        expect(page.locator(f"tr[data-job='{job_b.id}']")).to_have_count(0)
        page.screenshot(path=SHOTS / "jobs-tenant-viewer.png", full_page=True)
    finally:
        context.close()


def test_a_fan_out_job_shows_items_retries_failed_ones_and_serves_its_report(
    console: Console, browser: Browser
) -> None:
    """The fan-out page lists each item's status; retrying failed items and the CSV report work."""
    svc = console.service
    store = svc.store
    tenant = store.tenants.ensure("fanout-co")
    current = svc.rt.selectors_for(EchoAdapter).selectors["value"]
    console.world.context("echo").options["markup_class"] = current.removeprefix("p.")
    good = console.world.url("echo")
    parent = run(svc.submit(tenant_id=tenant.id, adapter="echo", input={"url": good, "key": "p"}))
    kids = [
        run(svc.submit(tenant_id=tenant.id, adapter="echo", job_id=f"{parent.id}.{key}",
                       input={"url": target, "key": key}, parent_id=parent.id, item_key=key))
        for key, target in (("ok", good), ("down", "http://127.0.0.1:9/"))
    ]  # fmt: skip

    def settled() -> Any:
        return all(store.jobs.get(k.id).finished_at for k in kids)

    run(wait_until(settled, timeout=60))
    http, csrf = console.client(console.operator("operator"))
    with closing(http):
        report = http.get(f"/console/jobs/{parent.id}/report.csv")
        assert report.status_code == 200
        assert "down" in report.text
        assert "ok" in report.text
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        try:
            context.add_cookies(
                [
                    {"name": c.name, "value": c.value or "", "url": console.url}
                    for c in http.cookies.jar
                ]
            )
            page = context.new_page()
            page.goto(f"{console.url}/console/jobs/{parent.id}")
            expect(page.locator("tr[data-item='down'] .pill")).to_have_text("failed")
            expect(page.locator("tr[data-item='ok'] .pill")).to_have_text("succeeded")
            page.screenshot(path=SHOTS / "job-fanout.png", full_page=True)
            page.click("text=Retry 1 failed item")
            expect(page.locator("tr[data-item='down'] a code")).to_contain_text(".r1")
            page.screenshot(path=SHOTS / "job-fanout-retried.png", full_page=True)
        finally:
            context.close()
    actions = [a.action for a in store.audit.search(target_id=parent.id)]
    assert "items.retry" in actions
    assert csrf
