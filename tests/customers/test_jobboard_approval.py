"""Job-board approval (scenario 4, the customer in the loop): an application with
`approval: "customer"` is filled in Chromium up to the board's review page and waits, sending
nothing, until its customer says yes in the portal; then it is submitted exactly once. A no
fails it and nothing is sent. On the stack `portwright up` runs (fleet, gateway, portal,
sandbox mail). The prompt's filled values: test_jobboard_review."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from portwright.cli._stack import Stack, start_stack
from portwright.sandbox import SandboxWorld, captcha, inbox, jobboard, mail
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.adapters.test_jobboard import applicant
from tests.customers._support import PASSWORD, Portal, Receiver, off_loop

pytestmark = pytest.mark.browser


@pytest.fixture
def up(settings: Settings) -> Iterator[tuple[Portal, Stack]]:
    specs = [
        *inbox.specs(),
        *mail.specs(),
        *jobboard.specs(),
        *captcha.specs({"solve_time_s": 0.05}),
    ]
    with SandboxWorld(specs, seed=9) as world:
        tuned = settings.model_copy(
            update={"master_key": SecretStr("jobboard-approval-key-" + "k" * 32)}
        )
        stack = off_loop(lambda: start_stack(tuned, world=world, browser_notice=False))
        portal = Portal(stack.service, stack.settings, stack.gateway_url, world, None, Receiver())  # type: ignore[arg-type]
        try:
            yield portal, stack
        finally:
            portal.close()
            off_loop(stack.stop)


def _application(portal: Portal, owner: str, listing: int, email: str) -> str:
    token = portal.client().post("/v1/auth/token", json={"email": owner, "password": PASSWORD})
    api = portal.client(authorization=f"Bearer {token.json()['access_token']}")
    data: dict[str, Any] = {
        "board_url": portal.world.url("jobboard"),
        "job_id": listing,
        "applicant": applicant(
            email,
            answers={
                "disagreed with a manager": "I showed the numbers; we agreed to delay a week.",
                "how you like to work": "collaborative",
            },
        ),
        "approval": "customer",
        "live": False,
    }
    created = api.post("/v1/jobs", json={"adapter": "jobboard", "input": data})
    assert created.status_code in (200, 201, 202), created.text
    job_id: str = created.json()["id"]
    return job_id


def test_an_application_waits_for_approval_and_submits_once(
    up: tuple[Portal, Stack],
) -> None:
    """Nothing reaches the board while the customer has not approved; after their yes in the
    portal the application is submitted once; a second application declined is never sent."""
    portal, _ = up
    owner, _ = portal.owner()
    http, csrf = portal.login(owner)
    email = f"ada-{secrets.token_hex(3)}@example.com"
    job_id = _application(portal, owner, 2, email)
    store = portal.service.store
    wait_until_sync(lambda: store.jobs.get(job_id).waiting_for == "approval", timeout=60)
    mail_ = portal.wait_message(owner, contains=f"Job {job_id} needs your answer")
    assert "listing 2" in mail_["body"]
    ledger = portal.world.ledger("jobboard")
    assert ledger.entries("application") == []
    page = http.get(f"/app/jobs/{job_id}")
    assert "Send the application for listing 2" in page.text
    answered = http.post(
        f"/app/jobs/{job_id}/answer", data={"name": "approval", "value": "yes", "csrf_token": csrf}
    )
    assert answered.status_code == 303
    wait_until_sync(lambda: store.jobs.get(job_id).status in ("succeeded", "failed"), timeout=180)
    done = store.jobs.get(job_id)
    assert done.status == "succeeded", done.reason
    assert [e.key for e in ledger.entries("application")] == [f"2|{email}"]

    declined = _application(portal, owner, 4, f"alan-{secrets.token_hex(3)}@example.com")
    wait_until_sync(lambda: store.jobs.get(declined).waiting_for == "approval", timeout=60)
    http.post(
        f"/app/jobs/{declined}/answer", data={"name": "approval", "value": "no", "csrf_token": csrf}
    )
    wait_until_sync(lambda: store.jobs.get(declined).status == "failed", timeout=60)
    assert "declined" in (store.jobs.get(declined).reason or "")
    assert [e.key for e in ledger.entries("application")] == [f"2|{email}"]
