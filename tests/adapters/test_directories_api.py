"""Scenario 3 through the public API: staff read items, download the report, retry failures."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from portwright.apps.directories import DirectoryFormAdapter, DirectorySubmissionAdapter
from portwright.gateway import create_app, issue_key
from portwright.orchestrator import JobService
from portwright.resources import TwoCaptchaSolver
from portwright.sandbox import SandboxWorld, captcha, directories
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.adapters.test_directories import CATALOG, PROFILE
from tests.gateway._support import ServerThread
from tests.orchestrator._support import registry
from tests.support import reaching


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([*captcha.specs(), *directories.specs()], seed=6) as w:
        w.context("captcha-solver").options["solve_time_s"] = 0.1
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)


@pytest.fixture
def api(
    service_for: Callable[..., JobService], settings: Settings, world: SandboxWorld
) -> Iterator[tuple[httpx.Client, JobService]]:
    solver = TwoCaptchaSolver(world.url("captcha-solver"), "sandbox-key", poll_s=0.05)
    svc = service_for(registry(DirectorySubmissionAdapter, DirectoryFormAdapter), captcha=solver)
    server = ServerThread(create_app(svc, settings)).start()
    key = issue_key(svc.store, tenant="acme").key
    try:
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            yield http, svc
    finally:
        server.stop()


def _order(world: SandboxWorld, slugs: list[str], **profile: Any) -> dict[str, Any]:
    return {
        "adapter": "directory-submission",
        "input": {"profile": {**PROFILE, **profile}, "plan": 50, "directories": slugs,
                  "directories_url": world.url("directories"), "poll_s": 0.2},
    }  # fmt: skip


async def test_staff_follow_a_fanout_job_through_the_api(
    api: tuple[httpx.Client, JobService], world: SandboxWorld
) -> None:
    """A bad profile is a 422 naming the field; items, the report (CSV, JSON, HTML) and a retry
    of failed items are reachable through the API, and the retry leaves successes alone."""
    http, svc = api
    calm = [d["slug"] for d in CATALOG if d["sandbox"] == {"error_rate": 0.0, "outage": None}
            and not d["captcha"]][:3]  # fmt: skip
    down = next(d["slug"] for d in CATALOG if d["sandbox"]["outage"] == "down")
    bad = http.post("/v1/jobs", json=_order(world, calm, phone=None))
    assert bad.status_code == 422
    assert "input.profile.phone" in bad.text
    created = http.post("/v1/jobs", json=_order(world, [*calm, down]))
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]

    def settled() -> bool:
        return http.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"

    await wait_until(settled, timeout=120, every=0.3)
    items = http.get(f"/v1/jobs/{job_id}/items").json()["data"]
    assert [i["status"] for i in items] == ["succeeded"] * 3 + ["failed"]
    log = http.get(f"/v1/jobs/{items[-1]['id']}/events").json()["data"]
    assert any(e["to_state"] == "RETRY_WAIT" for e in log), "the item's log shows its retries"
    rows = list(csv.DictReader(io.StringIO(http.get(f"/v1/jobs/{job_id}/report?format=csv").text)))
    assert len(rows) == 4
    assert {r["item"] for r in rows} == {*calm, down}
    html = http.get(f"/v1/jobs/{job_id}/report?format=html")
    assert html.headers["content-type"].startswith("text/html")
    assert '<b id="failed">1</b>' in html.text
    world.context("directories").options["outages"] = {down: "up"}
    retried = http.post(f"/v1/jobs/{job_id}/items/retry", json={})
    assert retried.status_code == 202, retried.text
    assert [j["id"] for j in retried.json()["data"]] == [f"{items[-1]['id']}.r1"]
    await wait_until(
        lambda: http.get(f"/v1/jobs/{job_id}/items").json()["data"][-1]["status"] == "succeeded",
        timeout=60, every=0.3,
    )  # fmt: skip
    after = http.get(f"/v1/jobs/{job_id}/items").json()["data"]
    assert [i["id"] for i in after[:3]] == [i["id"] for i in items[:3]]
    report = http.get(f"/v1/jobs/{job_id}/report").json()
    assert report["counts"] == {"total": 4, "succeeded": 4}
    assert http.post(f"/v1/jobs/{job_id}/items/retry", json={}).status_code == 409
    assert world.ledger("directories").duplicates("listing") == {}
    other = issue_key(svc.store, tenant="globex").key
    foreign = http.get(f"/v1/jobs/{job_id}/report", headers={"authorization": f"Bearer {other}"})
    assert foreign.status_code == 404
