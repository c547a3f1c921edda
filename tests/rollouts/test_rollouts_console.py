"""The console's rollouts page on SQLite and PostgreSQL: versions, agreement, admin changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from portwright.gateway import create_app
from portwright.orchestrator import JobService, RolloutChange
from portwright.sandbox import SandboxWorld
from portwright.settings import Settings
from tests.console._support import Console, run
from tests.gateway._support import ServerThread
from tests.rollouts._adapters import SiteV1, SiteV2
from tests.rollouts.test_rollouts import SETTLED, _registry, _status


@pytest.fixture
def console(
    service_for: Callable[..., JobService], settings: Settings, world: SandboxWorld
) -> Iterator[Console]:
    svc = service_for(_registry(SiteV1, SiteV2))
    app = create_app(svc, settings)
    server = ServerThread(app).start()
    try:
        yield Console(svc, server.url, world, app)
    finally:
        server.stop()


def test_the_rollouts_page_shows_versions_and_agreement_and_admins_change_them(
    console: Console, world: SandboxWorld
) -> None:
    """A viewer sees live, shadow and the shadow's agreement per step; a viewer's change is
    refused; a platform admin sets a canary from the form (audited) and rolls it back."""
    svc = console.service
    svc.rt.rollouts.set("site", RolloutChange(shadow="2"), actor="op")
    sample = {"url": world.url("echo"), "key": "p"}
    svc.rt.rollouts.set_probe("site", sample, every_s=3600, enabled=True, actor="op")
    run(svc.rt.rollouts.probe("site"))
    tenant = svc.store.tenants.ensure("acme")

    async def one_job() -> None:
        payload = {"url": world.url("echo"), "key": "c"}
        job = await svc.submit(tenant_id=tenant.id, adapter="site", input=payload)
        await _status(svc, job.id, SETTLED)

    run(one_job())
    viewer, _ = console.client(console.operator("viewer"))
    admin, token = console.client(console.operator("admin"))
    try:
        _check(console, viewer, admin, token)
    finally:
        viewer.close()
        admin.close()


def _check(console: Console, viewer: httpx.Client, admin: httpx.Client, token: str) -> None:
    svc = console.service
    shown = viewer.get("/console/rollouts")
    assert shown.status_code == 200
    assert 'data-portal="site"' in shown.text
    assert '<td data-field="live">1</td>' in shown.text
    assert 'data-field="agreement">100%' in shown.text
    assert '<span class="ok">ok</span> on v1' in shown.text
    denied = viewer.post("/console/rollouts/site", data={"canary": "2", "csrf_token": "x"})
    assert denied.status_code == 403
    form = {"csrf_token": token, "live": "1", "canary": "2", "canary_percent": "25",
            "shadow": "", "reason": "try 2"}  # fmt: skip
    saved = admin.post("/console/rollouts/site", data=form)
    assert saved.status_code == 303, saved.text
    record = svc.store.rollouts.get("site")
    assert record is not None
    assert (record.canary, record.canary_percent, record.shadow) == ("2", 25, None)
    bad = admin.post("/console/rollouts/site", data={**form, "canary": "9"})
    assert bad.status_code == 422
    assert "no version" in bad.text
    back = admin.post("/console/rollouts/site/rollback", data={"csrf_token": token})
    assert back.status_code == 303
    after = svc.store.rollouts.get("site")
    assert after is not None
    assert after.canary is None
    actions = [(a.action, a.actor) for a in svc.store.audit.search(target_id="site")][:2]
    assert [a for a, _ in actions] == ["rollout.rollback", "rollout.set"]
    assert all(actor.startswith("op:admin-") for _, actor in actions), actions


def test_a_portal_level_escalation_and_probe_health_in_the_console_and_status(
    console: Console, world: SandboxWorld
) -> None:
    """A probe that meets the DOM shift: /status shows its health (outcome, age) in HTML
    and JSON; the platform operator's queue lists the portal-level escalation (no job),
    its page says so and acknowledges it; a tenant's operator does not see it."""
    svc = console.service
    sample = {"url": world.url("echo"), "key": "p"}
    svc.rt.rollouts.set("site", RolloutChange(live="2"), actor="op")  # v2 reads p.v only
    svc.rt.rollouts.set_probe("site", sample, every_s=3600, enabled=True, actor="op")
    world.context("echo").options["markup_class"] = "w"
    assert run(svc.rt.rollouts.probe("site")) == "page_changed"
    [esc] = svc.store.escalations.find(tenant_id=None, portal_level=True).rows
    with httpx.Client(base_url=console.url, timeout=30) as public:
        status = public.get("/status", headers={"accept": "application/json"}).json()
        page = public.get("/status").text
        metrics = public.get("/metrics").text
    assert 'portwright_probe_failures{portal="site"} 1.0' in metrics
    assert 'portwright_portal_probe_escalations_open{portal="site"} 1.0' in metrics
    assert 'portwright_probe_interval_seconds{portal="site"} 3600.0' in metrics
    assert 'portwright_probe_last_run_age_seconds{portal="site"}' in metrics
    [site] = [c for c in status["components"] if c["name"] == "site"]
    assert site["state"] == "degraded"
    assert site["probe"]["outcome"] == "page_changed"
    assert (site["probe"]["failures"], site["probe"]["late"]) == (1, False)
    assert site["probe"]["age_s"] >= 0
    assert "page_changed" in page
    assert " ago" in page
    staff, token = console.client(console.operator("operator"))
    tenant_op, _ = console.client(console.operator("operator", tenant="acme"))
    try:
        queue = staff.get("/console/escalations")
        assert esc.id in queue.text
        assert "portal (probe)" in queue.text
        shown = staff.get(f"/console/escalations/{esc.id}")
        assert shown.status_code == 200, shown.text
        assert 'id="portal-level"' in shown.text
        assert 'id="acknowledge"' in shown.text
        assert tenant_op.get(f"/console/escalations/{esc.id}").status_code == 404
        done = staff.post(f"/console/escalations/{esc.id}/acknowledge", data={"csrf_token": token})
        assert done.status_code == 303, done.text
        assert svc.store.jobs.escalation(esc.id).status == "resolved"
    finally:
        staff.close()
        tenant_op.close()
