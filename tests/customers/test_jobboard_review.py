"""Job-board approval on the filled form (scenario 4, the customer in the loop): with
`approval: "customer"` the application is filled in Chromium up to the board's review page,
then the customer is asked with the values as filled; nothing is sent before their yes; after
it the application is submitted exactly once, and a second answer changes nothing."""

from __future__ import annotations

import secrets

import pytest

from portwright.cli._stack import Stack
from portwright.testing import wait_until_sync
from tests.customers._support import PASSWORD, Portal
from tests.customers.test_jobboard_approval import _application, up

__all__ = ["up"]  # the fixture, shared with test_jobboard_approval

pytestmark = pytest.mark.browser


def test_the_customer_approves_the_filled_form_and_it_is_sent_once(
    up: tuple[Portal, Stack],
) -> None:
    portal, _ = up
    owner, _ = portal.owner()
    http, csrf = portal.login(owner)
    email = f"grace-{secrets.token_hex(3)}@example.com"
    job_id = _application(portal, owner, 3, email)
    store = portal.service.store
    wait_until_sync(lambda: store.jobs.get(job_id).waiting_for == "approval", timeout=120)

    # The form was filled before the question: the prompt shows the values as filled.
    page = http.get(f"/app/jobs/{job_id}")
    assert "Send the application for listing 3" in page.text
    details = page.text.split('id="asked-details">', 1)[1].split("</pre>", 1)[0]
    for filled in ("Ada Lovelace", email, "+44 20 7946 0000", "London", "ada.pdf"):
        assert filled in details, filled
    assert "we agreed to delay a week" in details  # a screening answer, as typed in the form
    mail = portal.wait_message(owner, contains=f"Job {job_id} needs your answer")
    assert email in mail["body"]
    # ... and nothing was sent.
    ledger = portal.world.ledger("jobboard")
    assert ledger.entries("application") == []
    assert store.jobs.get(job_id).status == "waiting"

    yes = http.post(
        f"/app/jobs/{job_id}/answer", data={"name": "approval", "value": "yes", "csrf_token": csrf}
    )
    assert yes.status_code == 303
    wait_until_sync(lambda: store.jobs.get(job_id).status in ("succeeded", "failed"), timeout=180)
    done = store.jobs.get(job_id)
    assert done.status == "succeeded", done.reason
    assert [e.key for e in ledger.entries("application")] == [f"3|{email}"]

    # A second yes (portal or API) is refused and sends nothing more.
    again = http.post(
        f"/app/jobs/{job_id}/answer", data={"name": "approval", "value": "yes", "csrf_token": csrf}
    )
    assert again.status_code == 409
    token = portal.client().post("/v1/auth/token", json={"email": owner, "password": PASSWORD})
    api = portal.client(authorization=f"Bearer {token.json()['access_token']}")
    late = api.post(f"/v1/jobs/{job_id}/input", json={"name": "approval", "value": "yes"})
    assert late.status_code == 409
    assert [e.key for e in ledger.entries("application")] == [f"3|{email}"]
    # The customer heard it succeeded.
    portal.wait_message(owner, contains=f"Job {job_id} finished")
