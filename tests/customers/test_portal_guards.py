"""Every route of the customer portal, read from the mounted app, is probed the way the
console's are: signed out it asks for a sign-in; a member gets 403 on every owner route and
not on theirs; every POST needs the session's CSRF token; every route that names a thing
(job, key, credential, webhook endpoint, report, checkout) answers 404 to another tenant's
owner given the real id of that tenant's thing, and changes nothing. A route added without a
place in the tables below fails the first test. On SQLite and PostgreSQL, billing on
localstripe (so its pages are probed too)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from portwright.orchestrator import JobService
from portwright.resources.vault import Vault
from portwright.sandbox import SandboxWorld
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.customers._orders import (
    PROFILE,
    bearer,
    billed_orders,
    directory_order,
    paying_world,
)
from tests.customers._support import Portal

Route = tuple[str, str]  # (method, path template under /app)

PUBLIC: set[Route] = {
    ("GET", "/signup"),
    ("POST", "/signup"),
    ("GET", "/verify"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/forgot"),
    ("POST", "/forgot"),
    ("GET", "/reset"),
    ("POST", "/reset"),
    ("GET", "/login/oidc/{name}"),
    ("GET", "/login/oidc/{name}/callback"),
}
MEMBER: set[Route] = {  # any signed-in user of the tenant
    ("GET", "/"),
    ("GET", "/live"),
    ("GET", "/jobs/{job_id}"),
    ("POST", "/jobs/{job_id}/answer"),
    ("GET", "/preferences"),
    ("POST", "/preferences"),
    ("POST", "/logout"),
    ("GET", "/intake"),
    ("GET", "/intake/{name}"),
    ("GET", "/reports"),
    ("GET", "/reports/{job_id}.{fmt}"),
    ("GET", "/usage"),
}
OWNER: set[Route] = {
    ("GET", "/keys"),
    ("POST", "/keys"),
    ("POST", "/keys/{prefix}/revoke"),
    ("GET", "/credentials"),
    ("POST", "/credentials"),
    ("POST", "/credentials/{name}/delete"),
    ("GET", "/members"),
    ("POST", "/members"),
    ("POST", "/intake/{name}"),
    ("GET", "/webhooks"),
    ("POST", "/webhooks"),
    ("POST", "/webhooks/{endpoint_id}/delete"),
    ("GET", "/billing"),
    ("POST", "/billing/plan"),
    ("POST", "/billing/checkout"),
    ("POST", "/billing/checkout/{checkout_id}/complete"),
}
# Path parameters that are not a tenant's thing: a provider's or a form's name.
NOT_OWNED = {"/login/oidc/{name}", "/login/oidc/{name}/callback", "/intake/{name}"}


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    yield from paying_world(seed=23)


@pytest.fixture
def portal(
    settings: Settings, world: SandboxWorld, service_for: Callable[..., JobService]
) -> Iterator[Portal]:
    yield from billed_orders(settings, world, service_for)


def portal_routes(portal: Portal) -> set[Route]:
    """Every (method, path) the mounted portal serves, however its routers were included
    (from its schema: the portal hides none of its routes from it)."""
    [mounted] = [r for r in portal.app.routes if isinstance(r, Mount) and r.path == "/app"]
    assert isinstance(mounted.app, FastAPI)
    paths = mounted.app.openapi()["paths"]
    return {(method.upper(), path) for path, methods in paths.items() for method in methods}


@dataclass
class Things:
    """One tenant's things, each by its real id."""

    job_id: str
    prefix: str
    name: str  # a saved credential's name
    endpoint_id: str
    checkout_id: str

    def fill(self, path: str) -> str:
        values = {**self.__dict__, "fmt": "csv"}
        if path.startswith("/intake/"):
            values["name"] = "business-profile"  # a form's name, the same for every tenant
        return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def secret(portal: Portal, tenant_id: str, name: str) -> str:
    vault = Vault.from_settings(portal.settings)
    try:
        return vault.get(tenant_id, name)
    finally:
        vault.close()


def things_of(portal: Portal, owner: str, http: httpx.Client, csrf: str) -> Things:
    """A finished directory order (with a report to download), an API key, a credential, a
    webhook endpoint and an open checkout, made by `owner` through the portal and the API."""
    store = portal.service.store
    api = portal.client(**bearer(portal, owner))
    created = api.post("/v1/jobs", json=directory_order(portal, profile=PROFILE))
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    made = http.post("/app/keys", data={"name": "ci", "csrf_token": csrf})
    assert made.status_code == 200, made.text
    key = re.search(r'id="new-key">pw_([A-Za-z0-9]+)_', made.text)
    assert key, made.text
    saved = http.post(
        "/app/credentials", data={"name": "portal-login", "value": "s3cret", "csrf_token": csrf}
    )
    assert saved.status_code == 303, saved.text
    hook = http.post(
        "/app/webhooks", data={"url": portal.receiver.url, "topics": "job.*", "csrf_token": csrf}
    )
    assert hook.status_code == 200, hook.text
    endpoint = re.search(r"/app/webhooks/(wep_\w+)/delete", hook.text)
    assert endpoint, hook.text
    started = http.post("/app/billing/checkout", data={"plan": "growth", "csrf_token": csrf})
    assert started.status_code == 200, started.text
    checkout = re.search(r"/app/billing/checkout/(seti_\w+)/complete", started.text)
    assert checkout, started.text
    wait_until_sync(lambda: store.jobs.get(job_id).status == "succeeded", timeout=120)
    return Things(job_id, key.group(1), "portal-login", endpoint.group(1), checkout.group(1))


def test_every_route_has_a_place_in_the_tables(portal: Portal) -> None:
    routes = portal_routes(portal)
    assert routes == PUBLIC | MEMBER | OWNER, {
        "not in the tables": sorted(routes - (PUBLIC | MEMBER | OWNER)),
        "no longer served": sorted((PUBLIC | MEMBER | OWNER) - routes),
    }
    assert not PUBLIC & MEMBER
    assert not PUBLIC & OWNER
    assert not MEMBER & OWNER


def test_signed_out_every_page_asks_for_a_sign_in(portal: Portal) -> None:
    owner, _ = portal.owner()
    http, csrf = portal.login(owner)
    things = things_of(portal, owner, http, csrf)
    anonymous = portal.client()
    for method, path in sorted(MEMBER | OWNER):
        url = "/app" + things.fill(path)
        answer = anonymous.request(method, url, data={"csrf_token": csrf})
        if method == "GET" and path != "/live":
            assert answer.status_code == 303, (method, path, answer.status_code)
            assert answer.headers["location"].startswith("/app/login?next="), path
        else:  # a form posted without a session, or the live stream: no redirect
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert "Sign in first" in answer.text, path


def test_members_get_403_on_every_owner_route_and_not_on_theirs(portal: Portal) -> None:
    owner, tenant_id = portal.owner()
    owner_http, owner_csrf = portal.login(owner)
    things = things_of(portal, owner, owner_http, owner_csrf)
    member = portal.member(owner_http, owner_csrf)
    http, csrf = portal.login(member)
    store = portal.service.store
    before = (
        [k.revoked_at for k in store.accounts.keys(tenant_id)],
        len(store.endpoints.search(tenant_id=tenant_id)),
        store.tenants.get(tenant_id).plan,
        len(store.customers.users(tenant_id)),
    )
    form = {
        "csrf_token": csrf,
        "name": "n",
        "value": "v",
        "email": "someone@example.test",
        "role": "owner",
        "url": portal.receiver.url,
        "plan": "business",
        "website": PROFILE["website"],
    }
    for method, path in sorted(OWNER):
        answer = http.request(method, "/app" + things.fill(path), data=form)
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text[:300])
        assert "needs the owner role" in answer.text, path
    for path in sorted(path for method, path in MEMBER if method == "GET"):
        if path == "/live":
            with http.stream("GET", "/app/live") as stream:
                assert stream.status_code == 200
            continue
        answer = http.get("/app" + things.fill(path))
        assert answer.status_code in (200, 303), (path, answer.status_code, answer.text[:300])
    assert before == (
        [k.revoked_at for k in store.accounts.keys(tenant_id)],
        len(store.endpoints.search(tenant_id=tenant_id)),
        store.tenants.get(tenant_id).plan,
        len(store.customers.users(tenant_id)),
    )
    assert secret(portal, tenant_id, "portal-login") == "s3cret"


def test_every_post_needs_the_session_csrf_token(portal: Portal) -> None:
    owner, _ = portal.owner()
    http, csrf = portal.login(owner)
    things = things_of(portal, owner, http, csrf)
    for method, path in sorted(r for r in MEMBER | OWNER if r[0] == "POST"):
        for data in ({}, {"csrf_token": csrf[:-2] + "xx"}):
            answer = http.request(method, "/app" + things.fill(path), data=data)
            assert answer.status_code == 403, (path, answer.status_code, answer.text[:300])
            assert "CSRF" in answer.text, path
    assert http.get("/app/").status_code == 200  # the logout was refused too
    # The signed-out forms carry a double-submit cookie instead: without it, refused.
    fresh = portal.client()
    for method, path in sorted(r for r in PUBLIC if r[0] == "POST"):
        answer = fresh.request(method, "/app" + path, data={"csrf_token": "forged"})
        assert answer.status_code == 403, (path, answer.status_code, answer.text[:300])


def test_another_tenants_ids_are_not_found_on_any_route(portal: Portal) -> None:
    b_owner, b_tenant = portal.owner()
    b_http, b_csrf = portal.login(b_owner)
    theirs = things_of(portal, b_owner, b_http, b_csrf)
    saved = b_http.post(
        "/app/intake/business-profile",
        data={
            **{k: v for k, v in PROFILE.items() if k != "address"},
            **{f"address.{k}": v for k, v in PROFILE["address"].items()},
            "csrf_token": b_csrf,
        },
    )
    assert saved.status_code == 303, saved.text
    a_owner, a_tenant = portal.owner()
    http, csrf = portal.login(a_owner)
    store = portal.service.store
    form = {"csrf_token": csrf, "name": "approval", "value": "yes"}
    probed = set()
    for method, path in sorted(MEMBER | OWNER):
        if "{" not in path or path in NOT_OWNED:
            continue
        answer = http.request(method, "/app" + theirs.fill(path), data=form)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text[:300])
        probed.add(path)
    assert {p for _, p in MEMBER | OWNER if "{" in p} - NOT_OWNED == probed
    # Pages that list things show none of B's.
    for path in ("/", "/reports", "/keys", "/credentials", "/webhooks", "/billing", "/usage"):
        text = http.get("/app" + path).text
        for value in (theirs.job_id, theirs.prefix, "portal-login", theirs.endpoint_id, b_owner):
            assert value not in text, (path, value)
    intake = http.get("/app/intake/business-profile").text
    assert PROFILE["name"] not in intake
    assert PROFILE["phone"] not in intake
    # B's things are untouched.
    assert [k.revoked_at for k in store.accounts.keys(b_tenant) if k.prefix == theirs.prefix] == [
        None
    ]
    assert [e.id for e in store.endpoints.search(tenant_id=b_tenant)] == [theirs.endpoint_id]
    assert secret(portal, b_tenant, "portal-login") == "s3cret"
    assert store.tenants.get(b_tenant).plan == store.tenants.get(a_tenant).plan == "starter"
    # ... and B still reaches each of them.
    assert b_http.get(f"/app/jobs/{theirs.job_id}").status_code == 200
    assert b_http.get(f"/app/reports/{theirs.job_id}.csv").status_code == 200
