"""The intake form and the directory order (issue 17): an order without a profile waits
visibly for the tenant's intake form; the form (portal and API) refuses missing fields by
name with the directory job's own validation; saved, the order proceeds, the customer gets
the "report ready" email (read from the sandbox SMTP inbox) and downloads the report from
the portal. Roles and other tenants are probed on every new page and route."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld, captcha, directories, inbox, mail
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.customers._orders import CALM, PROFILE, bearer, directory_order, serve_orders
from tests.customers._support import Portal


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


def _flat(profile: dict[str, Any], **changes: str) -> dict[str, str]:
    flat = {k: v for k, v in profile.items() if k != "address"}
    flat |= {f"address.{k}": v for k, v in profile["address"].items()}
    return flat | changes


def test_an_order_waits_for_the_intake_form_and_proceeds_when_it_is_complete(
    portal: Portal,
) -> None:
    store = portal.service.store
    owner, tenant_id = portal.owner()
    http, csrf = portal.login(owner)
    member = portal.member(http, csrf)
    member_http, member_csrf = portal.login(member)
    api = portal.client(**bearer(portal, owner))

    created = api.post("/v1/jobs", json=directory_order(portal))
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    # It waits, visibly, and nothing is dispatched.
    wait_until_sync(lambda: store.jobs.get(job_id).state == "WAITING_FOR_INTAKE", timeout=30)
    waiting = store.jobs.get(job_id)
    assert (waiting.status, waiting.waiting_for) == ("waiting", "intake")
    assert store.jobs.children(job_id) == []
    assert "Waiting for intake" in http.get(f"/app/jobs/{job_id}").text
    assert "Waiting for intake" in http.get("/app/").text
    assert job_id in http.get("/app/intake/business-profile").text

    # The API refuses a form with missing and bad fields, naming each; nothing is stored.
    partial = {k: v for k, v in PROFILE.items() if k not in ("phone", "hours")}
    partial["address"] = {k: v for k, v in PROFILE["address"].items() if k != "city"}
    partial["website"] = "not a url"
    refused = api.put("/v1/intake/business-profile", json=partial)
    assert refused.status_code == 422, refused.text
    fields = {f["field"] for f in refused.json()["fields"]}
    assert fields == {"phone", "hours", "address.city", "website"}
    assert "phone" in refused.json()["message"]
    assert api.get("/v1/intake/business-profile").json()["data"] is None

    # So does the portal's form, with the same names, keeping what was typed.
    page = http.post(
        "/app/intake/business-profile",
        data={**_flat(PROFILE, phone="", hours=""), "csrf_token": csrf},
    )
    assert page.status_code == 422
    assert 'data-field="phone"' in page.text
    assert 'data-field="hours"' in page.text
    assert 'data-field="name"' not in page.text
    assert 'value="Harbour Lights Bakery"' in page.text
    assert store.intake.get(tenant_id, "business-profile") is None
    assert store.jobs.get(job_id).state == "WAITING_FOR_INTAKE"

    # A member sees the form but may not save it (page and API); no CSRF, no save.
    assert member_http.get("/app/intake/business-profile").status_code == 200
    denied = member_http.post(
        "/app/intake/business-profile", data={**_flat(PROFILE), "csrf_token": member_csrf}
    )
    assert denied.status_code == 403
    member_api = portal.client(**bearer(portal, member))
    assert member_api.put("/v1/intake/business-profile", json=PROFILE).status_code == 403
    assert http.post("/app/intake/business-profile", data=_flat(PROFILE)).status_code == 403
    assert store.intake.get(tenant_id, "business-profile") is None

    # The owner completes it: the order proceeds to its end.
    done = http.post("/app/intake/business-profile", data={**_flat(PROFILE), "csrf_token": csrf})
    assert done.status_code == 303, done.text
    assert done.headers["location"].endswith("?saved=1")
    wait_until_sync(lambda: store.jobs.get(job_id).status == "succeeded", timeout=120)
    assert len({c.item_key for c in store.jobs.children(job_id)}) == len(CALM)
    saved = api.get("/v1/intake/business-profile").json()
    assert saved["data"]["address"]["city"] == "Bristol"

    # "Report ready" by email, with a link to the portal's reports page.
    message = portal.wait_message(owner, contains=f"Report ready: order {job_id}", timeout=60)
    link = next(w for w in message["body"].split() if w.endswith("/app/reports"))
    reports = http.get(urlsplit(link).path)
    assert reports.status_code == 200
    assert f"report-{job_id}" in reports.text
    # ... downloadable by the owner and a member, as CSV, JSON and HTML.
    rows = list(csv.DictReader(io.StringIO(http.get(f"/app/reports/{job_id}.csv").text)))
    assert sorted(r["item"] for r in rows) == sorted(CALM)
    as_json = json.loads(member_http.get(f"/app/reports/{job_id}.json").text)
    assert as_json["counts"]["total"] == len(CALM)
    assert member_http.get(f"/app/reports/{job_id}.html").status_code == 200

    # A second order finds the form saved and does not wait.
    again = api.post("/v1/jobs", json=directory_order(portal)).json()["id"]
    wait_until_sync(lambda: store.jobs.get(again).status == "succeeded", timeout=120)
    assert "WAITING_FOR_INTAKE" not in [e.to_state for e in store.jobs.events(again)]

    # Another tenant sees none of it.
    other, _ = portal.owner()
    other_http, _other_csrf = portal.login(other)
    assert other_http.get(f"/app/reports/{job_id}.csv").status_code == 404
    assert job_id not in other_http.get("/app/reports").text
    assert other_http.get(f"/app/jobs/{job_id}").status_code == 404
    other_api = portal.client(**bearer(portal, other))
    assert other_api.get("/v1/intake/business-profile").json()["data"] is None


def test_an_order_with_its_own_profile_does_not_wait(portal: Portal) -> None:
    owner, _ = portal.owner()
    api = portal.client(**bearer(portal, owner))
    created = api.post("/v1/jobs", json=directory_order(portal, profile=PROFILE))
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    store = portal.service.store
    wait_until_sync(lambda: store.jobs.get(job_id).status == "succeeded", timeout=120)
    assert "WAITING_FOR_INTAKE" not in [e.to_state for e in store.jobs.events(job_id)]
    missing = api.post("/v1/jobs", json=directory_order(portal, profile={**PROFILE, "phone": None}))
    assert missing.status_code == 422
    assert "input.profile.phone" in missing.text
    unknown = api.get("/v1/intake/no-such-form")
    assert unknown.status_code == 404
    assert "business-profile" in unknown.text
