"""Dispatch's console page, contributed through `portwright.console_panels`: linked in the
console's navigation, showing only the drivers of the operator's tenant (every tenant's
for a platform-wide operator), and its on/off-duty action guarded like the console's own
actions — sign-in, the operator role, the CSRF token and the tenant scope — and audited."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from portwright.apps.dispatch._store import DispatchRepository
from portwright.console import hash_password, installed_panels
from tests.dispatch.conftest import PASSWORD, TIMEOUT, Dispatch

PAGE = "/console/apps/dispatch"


@contextmanager
def _signed_in(
    dispatch: Dispatch, role: str, tenant: str | None
) -> Iterator[tuple[httpx.Client, str]]:
    """An HTTP client signed in as a new operator with `role` (of `tenant`, or platform-wide
    when None), and its session's CSRF token."""
    email = f"{role}-{secrets.token_hex(3)}@example.test"
    dispatch.store.console.create_operator(
        email=email, password_hash=hash_password(PASSWORD), role=role,
        tenant_id=dispatch.tenant_ids[tenant] if tenant else None,
    )  # fmt: skip
    with httpx.Client(base_url=dispatch.url, timeout=TIMEOUT) as http:
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/console/login").text)
        assert token is not None
        form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
        assert http.post("/console/login", data=form).status_code == 303
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/console/").text)
        assert csrf is not None
        yield http, csrf.group(1)


def _available(dispatch: Dispatch, tenant: str, driver_id: str) -> bool:
    driver = DispatchRepository(dispatch.store.engine).driver(
        dispatch.tenant_ids[tenant], driver_id
    )
    assert driver is not None
    return driver.available


def test_the_panel_is_installed_and_linked_in_the_navigation(dispatch: Dispatch) -> None:
    """The dispatch panel is found by its entry point, and every console page links it."""
    assert "dispatch" in [p.name for p in installed_panels()]
    with _signed_in(dispatch, "viewer", "acme") as (http, _):
        home = http.get("/console/").text
        assert f'href="{PAGE}"' in home
        assert 'data-panel="dispatch"' in home


def test_the_page_shows_the_operators_tenant_only(dispatch: Dispatch) -> None:
    """A tenant's viewer sees its drivers and not the other tenant's; a platform-wide
    viewer sees both, each with its tenant; a visitor not signed in is sent to sign in."""
    dispatch.add_drivers("acme", "acme-d1", "acme-d2")
    dispatch.add_drivers("globex", "globex-d1")
    anonymous = httpx.get(f"{dispatch.url}{PAGE}", timeout=TIMEOUT)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/console/login")

    with _signed_in(dispatch, "viewer", "acme") as (http, _):
        page = http.get(PAGE)
    assert page.status_code == 200
    assert "acme-d1" in page.text
    assert "acme-d2" in page.text
    assert "globex-d1" not in page.text
    assert "on duty" in page.text
    assert "Set off duty" not in page.text  # a viewer gets no action buttons

    with _signed_in(dispatch, "viewer", None) as (http, _):
        everyone = http.get(PAGE).text
    assert "acme-d1" in everyone
    assert "globex-d1" in everyone
    assert dispatch.tenant_ids["globex"] in everyone


def test_the_duty_action_is_guarded_scoped_and_audited(dispatch: Dispatch) -> None:
    """Without the CSRF token, or as a viewer, the action is refused; an acme operator
    cannot reach globex's driver (404, unchanged); with the token it switches acme's
    driver off duty, the page says so, and the audit log has the operator's row."""
    dispatch.add_drivers("acme", "acme-d1")
    dispatch.add_drivers("globex", "globex-d1")
    acme, globex = dispatch.tenant_ids["acme"], dispatch.tenant_ids["globex"]
    off = {"tenant_id": acme, "driver_id": "acme-d1", "available": "off"}

    with _signed_in(dispatch, "viewer", "acme") as (viewer, viewer_csrf):
        refused = viewer.post(f"{PAGE}/duty", data={**off, "csrf_token": viewer_csrf})
    assert refused.status_code == 403
    assert "operator role" in refused.text

    with _signed_in(dispatch, "operator", "acme") as (http, csrf):
        no_token = http.post(f"{PAGE}/duty", data=off)
        assert no_token.status_code == 403
        assert "CSRF" in no_token.text
        assert _available(dispatch, "acme", "acme-d1")

        other = {"tenant_id": globex, "driver_id": "globex-d1", "available": "off"}
        across = http.post(f"{PAGE}/duty", data={**other, "csrf_token": csrf})
        assert across.status_code == 404
        assert "tenant_id" in across.text
        assert _available(dispatch, "globex", "globex-d1")

        bad = http.post(f"{PAGE}/duty", data={**off, "available": "maybe", "csrf_token": csrf})
        assert bad.status_code == 422
        assert "available: must be" in bad.text

        missing = {**off, "driver_id": "nobody", "csrf_token": csrf}
        assert http.post(f"{PAGE}/duty", data=missing).status_code == 404

        done = http.post(f"{PAGE}/duty", data={**off, "csrf_token": csrf})
        assert done.status_code == 303, done.text
        assert not _available(dispatch, "acme", "acme-d1")
        after = http.get(done.headers["location"]).text
    assert "driver acme-d1 is now off duty" in after
    assert "Set on duty" in after
    rows = [r for r in dispatch.store.audit.search(target_id="duty") if r.tenant_id == acme]
    assert [r.action for r in rows] == ["console.dispatch.duty"]
    assert rows[0].actor.startswith("op:operator-")
