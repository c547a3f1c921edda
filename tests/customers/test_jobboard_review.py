"""Job-board approval on the filled form (scenario 4, the customer in the loop): with
`approval: "customer"` the application is filled in Chromium up to the board's review page,
then the customer is asked with the values as filled; nothing is sent before their yes, given
in the portal in a real Chromium (the prompt at desktop and phone widths, screenshots for a
person to look at); after it the application is submitted exactly once, and a second answer
changes nothing."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Page, expect

from portwright.cli._stack import Stack
from portwright.testing import wait_until_sync
from tests.customers._support import PASSWORD, Portal, login_in_browser
from tests.customers.conftest import SHOTS
from tests.customers.test_jobboard_approval import _application, up
from tests.support import headless_chromium

__all__ = ["up"]  # the fixture, shared with test_jobboard_approval

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)  # a loaded machine: polling expectations, with a deadline
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


def _shoot(page: Page, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


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

    # The customer reads the filled form in the portal and says yes there, in Chromium.
    with headless_chromium() as chromium:
        for width, (w, h) in WIDTHS.items():
            tab = chromium.new_context(viewport={"width": w, "height": h}).new_page()
            login_in_browser(tab, portal, owner)
            tab.goto(f"{portal.url}/app/jobs/{job_id}")
            expect(tab.locator("#prompt h2")).to_contain_text("Send the application")
            expect(tab.locator("#asked-details")).to_contain_text(email)
            expect(tab.locator("#answer-no")).to_be_visible()  # a yes-or-no question
            # the timeline names the question by its first line, not the whole form again
            expect(tab.locator("ol.timeline")).to_contain_text("Send the application")
            expect(tab.locator("ol.timeline")).not_to_contain_text("As filled in")
            _shoot(tab, f"{width}-job-approve-filled-form")
            if width == "phone":
                tab.click("#answer-yes")
                expect(tab).to_have_url(f"{portal.url}/app/jobs/{job_id}?answered=approval")
            tab.context.close()
    wait_until_sync(lambda: store.jobs.get(job_id).status in ("succeeded", "failed"), timeout=180)
    done = store.jobs.get(job_id)
    assert done.status == "succeeded", done.reason
    [sent] = ledger.entries("application")
    assert sent.key == f"3|{email}"
    # What was sent is what the customer approved: every value the board received was in
    # the prompt they said yes to.
    received = [*sent.data["profile"].values(), *sent.data["answers"].values()]
    assert received
    for value in [str(v) for v in received if v]:
        assert value.lower() in details.lower(), value
    assert sent.data["resume"]["filename"] in details

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
