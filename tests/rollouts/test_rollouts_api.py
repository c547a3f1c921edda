"""The rollout API on SQLite and PostgreSQL: read, change (admin, audited), promote, roll back."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from portwright.gateway import create_app, issue_key
from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld
from portwright.settings import Settings
from tests.gateway._support import ServerThread
from tests.rollouts._adapters import SiteV1, SiteV2, SiteV3
from tests.rollouts.test_rollouts import _registry

Clients = tuple[httpx.Client, httpx.Client, JobService]


@pytest.fixture
def api(service_for: Callable[..., JobService], settings: Settings) -> Iterator[Clients]:
    svc = service_for(_registry(SiteV1, SiteV2, SiteV3))
    server = ServerThread(create_app(svc, settings)).start()
    admin = issue_key(svc.store, tenant="acme", scopes="jobs admin").key
    plain = issue_key(svc.store, tenant="acme").key
    try:
        with (
            httpx.Client(
                base_url=server.url, headers={"authorization": f"Bearer {admin}"}, timeout=30
            ) as a,
            httpx.Client(
                base_url=server.url, headers={"authorization": f"Bearer {plain}"}, timeout=30
            ) as p,
        ):
            yield a, p, svc
    finally:
        server.stop()


def test_staff_read_and_steer_a_rollout_through_the_api(api: Clients) -> None:
    """Reading shows the installed versions and the default; changing needs admin, checks
    versions, and is audited; promote and rollback move versions as asked."""
    admin, plain, svc = api
    shown = plain.get("/v1/portals/site/rollout")
    assert shown.status_code == 200, shown.text
    assert shown.json()["installed"] == ["1", "2", "3"]
    assert shown.json()["live"] == "1"  # 2 and 3 are candidates
    assert plain.put("/v1/portals/site/rollout", json={"canary": "2"}).status_code == 403
    missing = admin.put("/v1/portals/site/rollout", json={"canary": "7"})
    assert missing.status_code == 422
    assert "canary" in missing.text
    assert "installed: 1, 2, 3" in missing.text
    assert admin.put("/v1/portals/site/rollout", json={"canary_percent": 101}).status_code == 422
    assert admin.get("/v1/portals/nowhere/rollout").status_code == 404
    body = {"canary": "2", "canary_percent": 10, "shadow": "3", "reason": "trial"}
    changed = admin.put("/v1/portals/site/rollout", json=body)
    assert changed.status_code == 200, changed.text
    view = changed.json()
    assert (view["canary"], view["canary_percent"], view["shadow"]) == ("2", 10, "3")
    assert view["break_rates"] == {"live": [0, 0], "canary": [0, 0]}
    promoted = admin.post("/v1/portals/site/rollout/promote", json={"which": "canary"})
    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["live"], promoted.json()["canary"]) == ("2", None)
    again = admin.post("/v1/portals/site/rollout/rollback", json={})
    assert again.status_code == 422
    assert "no canary" in again.text
    admin.put("/v1/portals/site/rollout", json={"canary": "1", "canary_percent": 50})
    back = admin.post("/v1/portals/site/rollout/rollback", json={"reason": "bad"})
    assert back.status_code == 200
    assert back.json()["canary"] is None
    actions = [a.action for a in reversed(svc.store.audit.search(target_id="site"))]
    assert actions == ["rollout.set", "rollout.promote", "rollout.set", "rollout.rollback"]
    tenant = admin.put("/v1/portals/site/rollout", json={"live": "3", "tenant": "t-1"})
    assert tenant.json()["tenant"] == "t-1"
    assert admin.get("/v1/portals/site/rollout").json()["live"] == "2"


def test_a_probe_is_configured_through_the_api(api: Clients, world: SandboxWorld) -> None:
    """Configuring a probe needs admin, checks its input against the adapter's model (422
    naming the field), and the rollout view shows it."""
    admin, plain, svc = api
    body = {"input": {"url": world.url("echo"), "key": "p"}, "every_s": 60}
    assert plain.put("/v1/portals/site/probe", json=body).status_code == 403
    bad = admin.put("/v1/portals/site/probe", json={"input": {"url": world.url("echo")}})
    assert bad.status_code == 422
    assert "input.key" in bad.text
    done = admin.put("/v1/portals/site/probe", json=body)
    assert done.status_code == 200, done.text
    assert done.json()["probe"]["every_s"] == 60
    [audit] = [a for a in svc.store.audit.search(target_id="site") if a.action == "probe.set"]
    assert audit.actor.startswith("api:")
    assert (audit.before, audit.after) == (None, {"every_s": 60.0, "enabled": True})


def _portal_level(svc: JobService) -> str:
    """A portal-level escalation as a failing probe raises it (no job, no tenant)."""
    raised = svc.store.escalations.raise_portal(
        "site", kind="page_changed", reason="the probe of site found the page changed",
        details={"detail": "selector 'value' (p.v) matched nothing"}, since=0.0,
    )  # fmt: skip
    assert raised is not None
    return raised[0]


def test_portal_level_escalations_are_read_and_acknowledged_by_admin_keys(
    api: Clients,
) -> None:
    """A tenant's plain key neither lists nor reads a portal-level escalation (it belongs to
    no tenant); an admin key lists it with `portal_level=true`, reads it (no job, no job
    links) and acknowledges it (audited)."""
    admin, plain, svc = api
    esc_id = _portal_level(svc)
    assert plain.get("/v1/escalations", params={"portal_level": "true"}).status_code == 403
    assert esc_id not in plain.get("/v1/escalations").text
    assert plain.get(f"/v1/escalations/{esc_id}").status_code == 404
    listed = admin.get("/v1/escalations", params={"portal_level": "true", "state": "open"})
    assert listed.status_code == 200, listed.text
    [row] = listed.json()["data"]
    assert (row["id"], row["job_id"], row["links"], row["actions"]) == (
        esc_id, None, {}, ["acknowledge"]
    )  # fmt: skip
    assert admin.get(f"/v1/escalations/{esc_id}").json()["kind"] == "page_changed"
    refused = admin.post(f"/v1/escalations/{esc_id}/decide", json={"action": "retry"})
    assert refused.status_code == 422
    done = admin.post(
        f"/v1/escalations/{esc_id}/decide", json={"action": "acknowledge", "reason": "seen"}
    )
    assert done.status_code == 200, done.text
    assert svc.store.jobs.escalation(esc_id).status == "resolved"
    assert [a.action for a in svc.store.audit.search(target_id=esc_id)] == [
        "escalation.acknowledge"
    ]
