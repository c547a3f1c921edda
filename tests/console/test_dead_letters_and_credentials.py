"""Dead letters are listed, filtered and replayed from the console; stored portal credentials
open only for operators of their tenant, and every open is audited without the secret."""

from __future__ import annotations

import json
from contextlib import closing

import pytest
from playwright.sync_api import Browser, expect

from portwright.store import DeliveryFilter
from portwright.testing import EchoAdapter, wait_until
from tests.console._support import Console, run, signed_in
from tests.console.conftest import SHOTS

pytestmark = pytest.mark.browser


def test_dead_letters_are_filtered_and_replayed_with_an_audit_row(
    console: Console, browser: Browser
) -> None:
    """A webhook that cannot be delivered lands in the dead letters; the page filters it by
    platform, event type and date; replay puts it back (the relay tries it again) and the
    audit log keeps the actor with the state before and after."""
    svc = console.service
    store = svc.store
    tenant = store.tenants.ensure("dlq-co")
    endpoint = store.endpoints.create(
        tenant_id=tenant.id, url="http://127.0.0.1:9/hook", secrets=["whsec_" + "a" * 24],
        topics=["job.succeeded"], max_attempts=1,
    )  # fmt: skip
    current = svc.rt.selectors_for(EchoAdapter).selectors["value"]
    console.world.context("echo").options["markup_class"] = current.removeprefix("p.")
    url = console.world.url("echo")
    job = run(svc.submit(tenant_id=tenant.id, adapter="echo", input={"url": url, "key": "dlq"}))
    mine = DeliveryFilter(tenant_id=tenant.id)
    run(wait_until(lambda: store.deliveries.search(mine, status="dead"), timeout=60))
    (dead,) = store.deliveries.search(mine, status="dead")
    assert len(store.deliveries.attempts(dead.id)) == 1

    http, _ = console.client(console.operator("operator", tenant="dlq-co"))
    with closing(http):
        listed = http.get("/console/dead-letters", params={"topic": "job.succeeded"}).text
        assert f'data-delivery="{dead.id}"' in listed
        assert f'href="/console/jobs/{job.id}"' in listed  # the dead letter links its job
        assert dead.id not in http.get("/console/dead-letters?topic=job.failed").text
        assert dead.id not in http.get("/console/dead-letters?since=2999-01-01").text
        bad = http.get("/console/dead-letters?since=yesterday")
        assert bad.status_code == 422
        assert "since" in bad.text
        other, _ = console.client(console.operator("operator", tenant="someone-else"))
        with closing(other):
            assert dead.id not in other.get("/console/dead-letters").text

        context = signed_in(browser, console, http)
        try:
            page = context.new_page()
            page.goto(f"{console.url}/console/dead-letters")
            expect(page.locator(f"tr[data-delivery='{dead.id}']")).to_be_visible()
            page.screenshot(path=SHOTS / "dead-letters.png", full_page=True)
            page.fill("#replay-all-form input[name=reason]", "endpoint fixed")
            page.click("#replay-all")
            expect(page.locator("#replayed")).to_contain_text("1 dead letter put back")
            page.screenshot(path=SHOTS / "dead-letters-replayed.png", full_page=True)
        finally:
            context.close()

    # The relay picks the replayed delivery up again: a second attempt is recorded.
    run(wait_until(lambda: len(store.deliveries.attempts(dead.id)) == 2, timeout=60))
    (row,) = [a for a in store.audit.search(target_id=endpoint.id) if a.action.startswith("dead")]
    assert row.actor.startswith("op:operator-")
    assert row.tenant_id == tenant.id
    assert row.reason == "endpoint fixed"
    assert row.before is not None
    assert row.after is not None
    assert row.before["status"] == "dead"
    assert [d["id"] for d in row.before["deliveries"]] == [dead.id]
    assert row.after["status"] == "pending"
    assert row.after["replayed"] == [dead.id]


def test_opening_a_stored_credential_is_audited_and_limited_to_operators_of_its_tenant(
    console: Console, browser: Browser
) -> None:
    """Viewers get 403, another tenant's operator 404; an operator sees the value, and the
    audit row names actor, tenant and credential but never the value."""
    store = console.service.store
    vault = console.console_app.state.vault
    a = store.tenants.ensure("cred-a")
    b = store.tenants.ensure("cred-b")
    vault.put(a.id, "ann@example.test", "pw-s3cret-ann")
    vault.put(b.id, "bob@example.test", "pw-s3cret-bob")
    form = {"tenant_id": a.id, "name": "ann@example.test"}

    viewer, csrf = console.client(console.operator("viewer"))
    with closing(viewer):
        listing = viewer.get("/console/credentials")
        assert "ann@example.test" in listing.text
        assert "pw-s3cret" not in listing.text
        refused = viewer.post("/console/credentials/reveal", data={**form, "csrf_token": csrf})
        assert refused.status_code == 403
        assert "pw-s3cret" not in refused.text
    b_op, csrf = console.client(console.operator("operator", tenant="cred-b"))
    with closing(b_op):
        assert "ann@example.test" not in b_op.get("/console/credentials").text
        across = b_op.post("/console/credentials/reveal", data={**form, "csrf_token": csrf})
        assert across.status_code == 404
        assert "pw-s3cret" not in across.text
    assert not store.audit.search(target_id="ann@example.test")

    a_op = console.operator("operator", tenant="cred-a")
    http, csrf = console.client(a_op)
    with closing(http):
        opened = http.post(
            "/console/credentials/reveal", data={**form, "csrf_token": csrf, "reason": "ticket 7"}
        )
        assert opened.status_code == 200
        assert "pw-s3cret-ann" in opened.text
        assert opened.headers["cache-control"] == "no-store"
        context = signed_in(browser, console, http)
        try:
            page = context.new_page()
            page.goto(f"{console.url}/console/credentials")
            page.screenshot(path=SHOTS / "credentials.png", full_page=True)
            row = page.locator("tr[data-credential='ann@example.test']")
            row.locator("input[name=reason]").fill("user asked to check the password")
            row.locator("button").click()
            expect(page.locator("#secret-value")).to_have_text("pw-s3cret-ann")
            page.screenshot(path=SHOTS / "credential-opened.png", full_page=True)
            page.goto(f"{console.url}/console/audit?action=credential.")
            expect(page.locator("tr[data-action='credential.reveal']")).to_have_count(2)
            page.screenshot(path=SHOTS / "audit-credential.png", full_page=True)
        finally:
            context.close()

    rows = store.audit.search(target_id="ann@example.test")
    assert [r.action for r in rows] == ["credential.reveal", "credential.reveal"]
    assert {r.actor for r in rows} == {f"op:{a_op}"}
    assert {r.tenant_id for r in rows} == {a.id}
    assert [r.reason for r in rows] == ["user asked to check the password", "ticket 7"]
    assert rows[0].after == {"tenant_id": a.id, "name": "ann@example.test", "revision": 1}
    everything = store.audit.search(limit=10_000)
    every_row = json.dumps([(r.before, r.after, r.reason) for r in everything])
    assert "pw-s3cret" not in every_row
