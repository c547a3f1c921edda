"""The dashboard's numbers match the database; the job page shows evidence safely (a DOM
snapshot without scripts, screenshots, the trace download) with secrets masked."""

from __future__ import annotations

import io
import json
import statistics
import time
import zipfile
from contextlib import closing

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect

from portwright.store import BreakerPolicy
from portwright.testing import EchoAdapter, wait_until
from tests.console._support import Console, run, signed_in
from tests.console.conftest import SHOTS

pytestmark = pytest.mark.browser


def expected_numbers(console: Console, tenant_id: str) -> dict[str, str]:
    """The dashboard's figures for one tenant, computed here straight from the tables."""
    engine = console.service.store.engine
    since = time.time() - 24 * 3600
    with engine.connect() as conn:
        by_status = dict(
            conn.execute(
                sa.text("SELECT status, COUNT(*) FROM jobs WHERE tenant_id = :t GROUP BY status"),
                {"t": tenant_id},
            ).all()
        )
        ended = dict(
            conn.execute(
                sa.text(
                    "SELECT status, COUNT(*) FROM jobs WHERE tenant_id = :t "
                    "AND finished_at >= :s GROUP BY status"
                ),
                {"t": tenant_id, "s": since},
            ).all()
        )
        open_count = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM escalations WHERE tenant_id = :t "
                "AND status <> 'resolved' AND step <> 'alert'"
            ),
            {"t": tenant_id},
        ).scalar_one()
        waits = [
            float(r[0]) - float(r[1])
            for r in conn.execute(
                sa.text(
                    "SELECT resolved_at, created_at FROM escalations WHERE tenant_id = :t "
                    "AND resolved_at >= :s AND step <> 'alert'"
                ),
                {"t": tenant_id, "s": since},
            )
        ]
    ok, bad = ended.get("succeeded", 0), ended.get("failed", 0)
    return {
        "queued": str(by_status.get("queued", 0)),
        "running": str(by_status.get("running", 0)),
        "waiting": str(by_status.get("waiting", 0)),
        "succeeded": str(ok),
        "failed": str(bad),
        "success-rate": f"{ok / (ok + bad) * 100:.0f}%",
        "open-escalations": str(open_count),
        "median-response": f"{statistics.median(waits):.1f}s",
    }


def test_the_dashboard_numbers_and_portal_statuses_match_the_database(
    console: Console, browser: Browser
) -> None:
    """Queue, running, outcomes, success rate, open escalations and their median response,
    the hourly chart and every kind of portal status equal what the tables say."""
    svc = console.service
    store = svc.store
    tenant = store.tenants.ensure("dash-co")
    url = console.world.url("echo")
    current = svc.rt.selectors_for(EchoAdapter).selectors["value"]
    console.world.context("echo").options["markup_class"] = current.removeprefix("p.")
    done = [
        run(svc.submit(tenant_id=tenant.id, adapter="echo", input={"url": url, "key": f"d{i}"}))
        for i in range(2)
    ]
    sleeper = run(
        svc.submit(tenant_id=tenant.id, adapter="echo",
                   input={"url": url, "key": "zz", "steps": 2, "pause_s": 600})
    )  # fmt: skip
    for job in done:
        run(wait_until(lambda j=job: store.jobs.get(j.id).status == "succeeded", timeout=60))
    run(wait_until(lambda: _fetched(console, sleeper.id), timeout=60))
    console.world.context("echo").options["markup_class"] = "moved-elsewhere"
    parked = [
        run(svc.submit(tenant_id=tenant.id, adapter="echo", input={"url": url, "key": f"p{i}"}))
        for i in range(2)
    ]
    for job in parked:
        run(wait_until(lambda j=job: svc.store.jobs.escalations(job_id=j.id), timeout=60))
    (first,) = store.jobs.escalations(job_id=parked[0].id)
    # A known response time without waiting: the escalation opened 30 s earlier (under a
    # minute, which the dashboard shows in seconds); 0.0s would not tell a wrong figure.
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE escalations SET created_at = created_at - 30 WHERE id = :id"),
            {"id": first.id},
        )
    run(svc.decide(first.id, "fail", actor="op:test", reason="not worth it"))
    run(wait_until(lambda: store.jobs.get(parked[0].id).status == "failed", timeout=60))

    now = time.time()
    for name in ("dash-cooling", "dash-degraded", "dash-paused", "dash-open", "dash-fine"):
        store.portals.ensure(name, max_concurrency=1)
    until = store.portals.extend_cooldown(
        "dash-cooling", until=now + 900, reason="429", cause="429"
    )
    store.portals.set_degraded("dash-degraded", reason="5xx")
    store.portals.set_paused("dash-paused", paused=True, reason="maintenance")
    store.portals.record_outcome(
        "portal:dash-open", ok=False, policy=BreakerPolicy(min_calls=1, open_s=900)
    )
    portals = {
        "dash-cooling": f"cooling down until {time.strftime('%H:%M:%S', time.gmtime(until))} UTC",
        "dash-degraded": "degraded",
        "dash-paused": "paused (maintenance)",
        "dash-open": "circuit open",
        "dash-fine": "healthy",
    }

    http, _ = console.client(console.operator("viewer", tenant="dash-co"))
    with closing(http):
        context = signed_in(browser, console, http)
        try:
            page = context.new_page()
            page.goto(f"{console.url}/console/")
            want = expected_numbers(console, tenant.id)
            assert want["succeeded"] == "2"
            assert want["failed"] == "1"
            assert want["open-escalations"] == "1"
            assert float(want["median-response"].removesuffix("s")) >= 30.0
            shown = {stat: page.locator(f"[data-stat='{stat}'] b").inner_text() for stat in want}
            assert shown == want
            bars = page.locator("svg.chart rect[data-succeeded]")
            assert bars.count() == 24
            per_hour = [int(bars.nth(i).get_attribute("data-succeeded") or 0) for i in range(24)]
            assert sum(per_hour) == 2
            failed = page.locator("svg.chart rect[data-failed]")
            assert sum(int(failed.nth(i).get_attribute("data-failed") or 0) for i in range(24)) == 1
            for name, status in portals.items():
                expect(page.locator(f"tr[data-portal='{name}'] .pill")).to_have_text(status)
            page.screenshot(path=SHOTS / "dashboard-tenant.png", full_page=True)
        finally:
            context.close()
    run(svc.cancel(sleeper.id, reason="test over", actor="op:test"))
    store.portals.set_paused("dash-paused", paused=False, reason=None)


def _fetched(console: Console, job_id: str) -> bool:
    events = run(console.service.events(job_id))
    return any(e.to_state == "FETCHING" for e in events)


def test_the_job_page_shows_evidence_safely_and_masks_secrets(
    console: Console, browser: Browser
) -> None:
    """A parked job's page: its timeline from the events, the screenshot, a DOM snapshot in a
    sandboxed frame where the portal's scripts do not run, the trace download, and the
    input with its password masked."""
    svc = console.service
    store = svc.store
    tenant = store.tenants.ensure("jobpage-co")
    console.world.context("echo").options["markup_class"] = "moved-elsewhere"
    url = console.world.url("echo")
    job = run(svc.submit(tenant_id=tenant.id, adapter="echo", input={"url": url, "key": "jp"}))
    run(wait_until(lambda: store.jobs.escalations(job_id=job.id), timeout=60))
    # The echo adapter's input has no secret; give the stored row the kind a booking has
    # (a portal password, a card number) to check what the page shows of it.
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE jobs SET input = :input WHERE id = :id"),
            {"id": job.id, "input": json.dumps({"url": url, "key": "jp",
             "password": "hunter2-secret", "card_number": "4242424242424242"})},
        )  # fmt: skip

    http, _ = console.client(console.operator("viewer", tenant="jobpage-co"))
    with closing(http):
        context = signed_in(browser, console, http)
        try:
            page = context.new_page()
            page.set_content("<h1 style='font:40px sans-serif'>portal page at step fetch</h1>")
            shot = page.screenshot()
            trace = _zip({"trace.trace": b"{}", "trace.network": b"{}"})
            hostile = (
                b"<p id='x'>static</p><script>document.getElementById('x').textContent="
                b"'scripts ran'; parent.document.title='pwned'</script>"
            )
            for key, data, kind, media in (
                ("t/shot.png", shot, "screenshot", "image/png"),
                ("t/dom.html", hostile, "dom", "text/html"),
                ("t/trace.zip", trace, "trace", "application/zip"),
            ):
                svc.rt.blobs.put(f"{job.id}/{key}", data, content_type=media)
                store.jobs.add_evidence(
                    job_id=job.id, tenant_id=tenant.id, step="fetch", kind=kind,
                    blob_key=f"{job.id}/{key}", content_type=media, size=len(data), meta={},
                )  # fmt: skip

            page.goto(f"{console.url}/console/jobs/{job.id}")
            timeline = page.locator("ol.timeline")
            for state in ("QUEUED", "FETCHING", "OPERATOR_ACTION_REQUIRED"):
                expect(timeline).to_contain_text(state)
            hostile_frame = page.locator("iframe.dom").last
            assert hostile_frame.get_attribute("sandbox") == ""
            expect(page.frame_locator("iframe.dom").last.locator("#x")).to_have_text("static")
            assert page.title() != "pwned"
            image = page.locator("figure.ev[data-kind=screenshot] img")
            expect(image).to_be_visible()
            assert image.evaluate("img => img.naturalWidth") > 0
            assert "hunter2-secret" not in page.content()
            assert "4242424242424242" not in page.content()
            expect(page.locator("pre.json").first).to_contain_text('"password": "••••••"')
            href = page.locator("#trace-download").get_attribute("href")
            assert href
            page.screenshot(path=SHOTS / "job-evidence.png", full_page=True)
        finally:
            context.close()
        download = http.get(href)
        assert download.status_code == 200
        assert download.content == trace
        assert "attachment" in download.headers["content-disposition"]
    run(svc.cancel(job.id, reason="test over", actor="op:test"))


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
