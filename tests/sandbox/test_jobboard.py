"""The sandbox job board: a four-page application over HTTP and in Chromium, with duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from parsel import Selector
from playwright.sync_api import Browser, sync_playwright

from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium
from portwright.sandbox import SandboxWorld, captcha, jobboard

SEED = 4
RESUME = b"%PDF-1.4\n% a tiny resume\n"
PROFILE = {"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "location": "London"}
ANSWERS = {
    "years_experience": "7",
    "uk_work_authorisation": "yes",
    "working_style": "flexible",
    "disagreement": "I argued for more tests before a launch; we agreed to ship a week later.",
}


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld(jobboard.specs(), seed=SEED) as w:
        w.chaos("jobboard").update({"captcha_rate": 0.0})
        yield w


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=find_chromium(), args=list(CHROMIUM_ARGS), headless=True
        )
        yield chromium
        chromium.close()


def _named(fields: dict[str, str], version: int) -> dict[str, str]:
    """Canonical field keys renamed to what DOM version `version` calls them."""
    return {jobboard.FIELD_NAMES[version][k]: v for k, v in fields.items()}


def _post_form(
    client: httpx.Client, page: httpx.Response, data: dict[str, Any], **kw: Any
) -> httpx.Response:
    """Submit the page's form with its hidden CSRF token, as a plain HTTP client does."""
    form = Selector(page.text).css("form[method=post]")
    token = form.css("input[name=csrf_token]::attr(value)").get()
    action = form.attrib["action"]
    return client.post(action, data={"csrf_token": token, **data}, **kw)


def _apply(client: httpx.Client, job_id: int, email: str, version: int = 1) -> httpx.Response:
    """Walk the whole application for `job_id` and return the final response."""
    page = client.get(f"/jobs/{job_id}/apply")
    assert page.url.path == f"/jobs/{job_id}/apply/profile"
    page = _post_form(client, page, _named(PROFILE | {"email": email}, version))
    assert page.url.path.endswith("/resume"), page.text
    files = {jobboard.FIELD_NAMES[version]["resume"]: ("ada.pdf", RESUME, "application/pdf")}
    page = _post_form(client, page, {}, files=files)
    assert page.url.path.endswith("/questions"), page.text
    page = _post_form(client, page, _named(ANSWERS, version))
    assert page.url.path.endswith("/review"), page.text
    return _post_form(client, page, _named({"confirm": "yes"}, version))


def test_full_application_over_http_and_duplicates_refused(world: SandboxWorld) -> None:
    """A plain HTTP client applies through all pages; a second application is refused with 409."""
    base = world.url("jobboard")
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        listing = Selector(client.get("/jobs").text)
        assert len(listing.css("li.job")) == 24
        assert listing.css("li.job a.job-link::attr(href)").get() == "/jobs/1"
        job = Selector(client.get("/jobs/1").text)
        assert job.css("a.apply::attr(href)").get() == "/jobs/1/apply"
        done = _apply(client, 1, "ada@example.com")
        assert done.status_code == 200
        assert done.url.path == "/jobs/1/apply/done"
        app_id = Selector(done.text).css("#application::attr(data-application-id)").get()
        assert app_id == "APP-00001"
        entries = world.ledger("jobboard").entries("application")
        assert [e.key for e in entries] == ["1|ada@example.com"]
        assert entries[0].data["resume"]["size"] == len(RESUME)
        assert entries[0].data["answers"] == ANSWERS
        resent = client.post("/jobs/1/apply/submit", data={"csrf_token": "x"})
        assert resent.status_code == 409
        assert (
            Selector(resent.text).css(".error.duplicate::attr(data-application-id)").get() == app_id
        )
    with httpx.Client(base_url=base, follow_redirects=True) as again:
        repeat = _apply(again, 1, "ADA@example.com")
        assert repeat.status_code == 409
        assert Selector(repeat.text).css(".error.duplicate").get() is not None
        assert _apply(again, 2, "ada@example.com").status_code == 200
    ledger = world.ledger("jobboard")
    assert ledger.count("application", "1|ada@example.com") == 1
    assert ledger.count("duplicate_application", "1|ada@example.com") == 2
    assert ledger.duplicates("application") == {}


def test_allowing_duplicates_makes_them_visible_in_the_ledger(world: SandboxWorld) -> None:
    """With `allow_duplicates` a repeat goes through and the ledger shows the key twice."""
    world.context("jobboard").options["allow_duplicates"] = True
    for _ in range(2):
        with httpx.Client(base_url=world.url("jobboard"), follow_redirects=True) as client:
            assert _apply(client, 3, "bob@example.com").status_code == 200
    assert world.ledger("jobboard").duplicates("application") == {"3|bob@example.com": 2}


def test_invalid_fields_and_skipped_pages_are_refused(world: SandboxWorld) -> None:
    """Bad input re-renders with 422 and field errors; a later page redirects to the current one."""
    with httpx.Client(base_url=world.url("jobboard"), follow_redirects=True) as client:
        page = client.get("/jobs/5/apply")
        assert client.get("/jobs/5/apply/questions").url.path == "/jobs/5/apply/profile"
        bad = _post_form(client, page, PROFILE | {"email": "not-an-email", "phone": "12"})
        assert bad.status_code == 422
        errors = Selector(bad.text).css("p.error::attr(data-field)").getall()
        assert sorted(errors) == ["email", "phone"]
        assert Selector(bad.text).css("input[name=name]::attr(value)").get() == PROFILE["name"]
        forged = client.post("/jobs/5/apply/profile", data=PROFILE | {"email": "a@b.co"})
        assert forged.status_code == 403


def test_dom_version_2_renames_fields(world: SandboxWorld) -> None:
    """Under DOM v2 the v1 field names are missing (422) and the v2 names complete the flow."""
    world.chaos("jobboard").update({"dom_version": 2})
    with httpx.Client(base_url=world.url("jobboard"), follow_redirects=True) as client:
        page = client.get("/jobs/6/apply")
        sel = Selector(page.text)
        assert sel.css("form.application-step[data-step=profile]").get() is not None
        assert sel.css("form#apply-form").get() is None
        assert sel.css("input#fld-full_name[name=full_name]").get() is not None
        assert sel.css("button.btn-continue").get() is not None
        stale = _post_form(client, page, _named(PROFILE | {"email": "v1@example.com"}, 1))
        assert stale.status_code == 422
        done = _apply(client, 6, "v2@example.com", version=2)
        assert done.status_code == 200
        assert Selector(done.text).css("#application[data-application-id]").get() is not None


def test_captcha_on_review_needs_the_right_answer(world: SandboxWorld) -> None:
    """An application that drew a captcha is refused on a wrong answer and sent on the right one."""
    world.chaos("jobboard").update({"captcha_rate": 1.0})
    with httpx.Client(base_url=world.url("jobboard"), follow_redirects=True) as client:
        page = client.get("/jobs/7/apply")
        page = _post_form(client, page, PROFILE | {"email": "cat@example.com"})
        page = _post_form(client, page, {}, files={"resume": ("cv.txt", b"hello", "text/plain")})
        page = _post_form(client, page, ANSWERS)
        challenge_id = (
            Selector(page.text).css("div.captcha input[name=captcha_id]::attr(value)").get()
        )
        assert challenge_id
        wrong = _post_form(
            client, page, {"confirm": "yes", "captcha_id": challenge_id, "captcha_answer": "NOPE1"}
        )
        assert wrong.status_code == 422
        assert Selector(wrong.text).css("p.error[data-field=captcha]").get() is not None
        fresh_id = Selector(wrong.text).css("input[name=captcha_id]::attr(value)").get()
        assert fresh_id
        answer = captcha.answer_for(captcha.world_secret(SEED), fresh_id)
        done = _post_form(
            client, wrong, {"confirm": "yes", "captcha_id": fresh_id, "captcha_answer": answer}
        )
        assert done.status_code == 200
        assert world.ledger("jobboard").entries("application")[0].data["captcha"] is True


@pytest.mark.browser
def test_chromium_fills_the_multi_page_form_with_an_upload(
    world: SandboxWorld, browser: Browser
) -> None:
    """Chromium clicks through listing, profile, upload, questions and review to a confirmation."""
    page = browser.new_page()
    try:
        page.goto(f"{world.url('jobboard')}/jobs")
        page.click("li.job[data-job-id='2'] a.job-link")
        page.click("a.apply")
        page.fill("#name", PROFILE["name"])
        page.fill("#email", "grace@example.com")
        page.fill("#phone", PROFILE["phone"])
        page.fill("#location", PROFILE["location"])
        page.click("button#next")
        page.set_input_files(
            "input#resume",
            files=[{"name": "grace.pdf", "mimeType": "application/pdf", "buffer": RESUME}],
        )
        page.click("button#next")
        page.fill("#years_experience", "12")
        page.check("#uk_work_authorisation-yes")
        page.select_option("#working_style", "structured")
        page.fill("#disagreement", ANSWERS["disagreement"])
        page.click("button#next")
        assert page.inner_text("dd[data-field=resume]") == "grace.pdf"
        page.check("#confirm")
        page.click("button#submit")
        app_id = page.get_attribute("#application", "data-application-id")
        assert app_id == "APP-00001"
    finally:
        page.close()
    (entry,) = world.ledger("jobboard").entries("application")
    assert entry.key == "2|grace@example.com"
    assert entry.data["resume"]["filename"] == "grace.pdf"
    assert entry.data["resume"]["size"] == len(RESUME)
    assert entry.data["answers"]["working_style"] == "structured"
