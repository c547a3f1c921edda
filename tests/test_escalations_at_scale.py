"""Escalations at scale, through a real gateway and console on SQLite and PostgreSQL.

Jobs of the echo adapter park on a page-changed escalation when the echo page's markup
moves (each test moves it to a fresh class, whatever the selector map holds by then).
Decisions race for real: two requests released by one barrier, from two threads.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError

from portwright.adapters import AdapterRegistry
from portwright.client import Client, ConflictError, ForbiddenError
from portwright.console import hash_password
from portwright.gateway import create_app, issue_key
from portwright.orchestrator import (
    JobService,
    Runtime,
    SelectionTooLargeError,
    decide_escalations,
)
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.settings import Settings
from portwright.store import EscalationRecord, Store
from portwright.testing import EchoAdapter, wait_until_sync
from tests.conftest import SKIP_PG, pg_database
from tests.gateway._support import ServerThread
from tests.support import reaching

PASSWORD = "correct horse battery"


def _off_loop(fn: Callable[[], object]) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn).result()


@dataclass
class Stack:
    service: JobService
    url: str
    world: SandboxWorld

    @property
    def store(self) -> Store:
        return self.service.store

    def key(self, tenant: str, scopes: str = "jobs") -> str:
        return issue_key(self.store, tenant=tenant, scopes=scopes, plan="scale").key

    def api(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {key}"}, timeout=30
        )

    def operator(self, role: str = "operator", tenant: str | None = None) -> httpx.Client:
        """A console session (follow_redirects off) for a new operator; `.csrf` set."""
        email = f"{role}-{secrets.token_hex(3)}@example.test"
        tenant_id = self.store.tenants.ensure(tenant).id if tenant else None
        self.store.console.create_operator(
            email=email, password_hash=hash_password(PASSWORD), role=role, tenant_id=tenant_id
        )
        http = httpx.Client(base_url=self.url, timeout=30)
        token = _csrf(http.get("/console/login").text)
        done = http.post(
            "/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert done.status_code == 303, done.text
        http.headers["x-test-csrf"] = _csrf(http.get("/console/").text)
        return http

    def park(self, key: str, count: int) -> tuple[list[str], str]:
        """Move the echo markup to a fresh class and submit `count` jobs that park on it:
        their job ids and the class that now matches the page."""
        fresh = f"m{secrets.token_hex(3)}"
        self.world.context("echo").options["markup_class"] = fresh
        ids = []
        with self.api(key) as http:
            for index in range(count):
                answer = http.post(
                    "/v1/jobs",
                    json={"adapter": "echo",
                          "input": {"url": self.world.url("echo"), "key": f"{fresh}-{index}"}},
                )  # fmt: skip
                assert answer.status_code == 202, answer.text
                ids.append(answer.json()["id"])
        for job_id in ids:
            wait_until_sync(lambda j=job_id: self.parked(j), timeout=60)
        return ids, fresh

    def parked(self, job_id: str) -> EscalationRecord | None:
        open_ = self.store.jobs.escalations(job_id=job_id, status="open")
        return open_[0] if open_ else None

    def settled(self, job_id: str) -> str:
        wait_until_sync(
            lambda: self.store.jobs.get(job_id).status in ("succeeded", "failed", "cancelled"),
            timeout=60,
        )
        return self.store.jobs.get(job_id).status

    def audit(self, escalation_id: str) -> list[str]:
        return sorted(a.action for a in self.store.audit.search(target_id=escalation_id))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"esc-{request.param}")
    if request.param == "postgres":
        if SKIP_PG:
            pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
        databases = pg_database("pw_esc")
        url = next(databases)
    else:
        databases = None
        url = f"sqlite:///{tmp / 'app.sqlite'}"
    with SandboxWorld([echo_service()], seed=3) as world:
        settings = reaching(
            Settings(
                data_dir=tmp / "data", database_url=url, worker_id=f"esc-{secrets.token_hex(3)}",
                heartbeat_interval_s=0.5, dead_worker_after_s=5.0, queue_polling_interval_s=0.05,
                log_json=False,
            ),
            world,
        )  # fmt: skip
        registry = AdapterRegistry()
        registry.register(EchoAdapter)
        runtime = Runtime(settings, registry)
        _off_loop(runtime.start)
        service = JobService(runtime)
        server = ServerThread(create_app(service, settings)).start()
        try:
            yield Stack(service, server.url, world)
        finally:
            server.stop()
            _off_loop(runtime.stop)
            if databases is not None:
                next(databases, None)


def _race(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls at the same instant (one barrier), each on its own thread."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(go, calls))


def test_two_concurrent_api_decisions_one_wins_the_other_gets_409_and_no_audit(
    stack: Stack,
) -> None:
    """Two operator keys decide the same escalation at once (retry vs fail), three times:
    exactly one 200 each time, the other 409 naming the winner and what they chose; one
    audit row per escalation; the job follows the winner's decision."""
    tenant = f"race-{secrets.token_hex(2)}"
    submitter = stack.key(tenant)
    alice, bob = stack.key(tenant, "jobs operator"), stack.key(tenant, "jobs operator")
    jobs, _ = stack.park(submitter, 3)
    with stack.api(alice) as a, stack.api(bob) as b:
        for job_id in jobs:
            esc = stack.parked(job_id)
            assert esc is not None
            path = f"/v1/escalations/{esc.id}/decide"
            answers = _race(
                lambda p=path: a.post(p, json={"action": "fail", "reason": "alice says no"}),
                lambda p=path: b.post(p, json={"action": "cancel", "reason": "bob says stop"}),
            )
            codes = sorted(r.status_code for r in answers)
            assert codes == [200, 409], [r.text for r in answers]
            won = next(r for r in answers if r.status_code == 200).json()["escalation"]
            lost = next(r for r in answers if r.status_code == 409).json()
            assert (
                f"{won['decided_by']} already decided {won['decision']['action']}"
                in (lost["message"])
            )
            decisions = [x for x in stack.audit(esc.id) if x != "escalation.claim"]
            assert decisions == [f"escalation.{won['decision']['action']}"]
            want = {"fail": "failed", "cancel": "cancelled"}[won["decision"]["action"]]
            assert stack.settled(job_id) == want
            after = a.get(f"/v1/escalations/{esc.id}").json()
            assert after["status"] == "resolved"
            assert after["actions"] == []


def test_two_concurrent_console_decisions_one_is_told_who_decided(stack: Stack) -> None:
    """Two operators press different buttons at once in the console: one is redirected,
    the other sees the escalation page (409) saying who already decided what — no JSON —
    with the decision buttons gone; only one audit row."""
    jobs, _ = stack.park(stack.key(f"con-{secrets.token_hex(2)}"), 1)
    esc = stack.parked(jobs[0])
    assert esc is not None
    one, two = stack.operator(), stack.operator()
    base = f"/console/escalations/{esc.id}"
    answers = _race(
        lambda: one.post(f"{base}/cancel", data={"csrf_token": one.headers["x-test-csrf"]}),
        lambda: two.post(f"{base}/fail", data={"csrf_token": two.headers["x-test-csrf"]}),
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [303, 409], [r.text[:300] for r in answers]
    loser = next(r for r in answers if r.status_code == 409)
    assert loser.headers["content-type"].startswith("text/html")
    assert "already decided" in loser.text
    assert 'id="cancel"' not in loser.text
    assert 'id="fail"' not in loser.text
    assert len([x for x in stack.audit(esc.id) if x != "escalation.claim"]) == 1
    stack.settled(jobs[0])
    page = one.get(base).text
    assert 'id="cancel"' not in page
    assert "resolved" in page
    one.close()
    two.close()


def test_a_claim_is_enforced_and_taking_it_over_is_audited(stack: Stack) -> None:
    """Alice claims; Bob's decision is refused (409, naming Alice's claim) and audits
    nothing; Bob takes the claim over (audited) and then decides."""
    tenant = f"claim-{secrets.token_hex(2)}"
    jobs, _ = stack.park(stack.key(tenant), 1)
    esc = stack.parked(jobs[0])
    assert esc is not None
    with (
        Client(stack.url, stack.key(tenant, "jobs operator")) as alice,
        Client(stack.url, stack.key(tenant, "jobs operator")) as bob,
    ):
        claimed = alice.claim_escalation(esc.id)
        assert claimed.status == "claimed"
        with pytest.raises(ConflictError, match="holds the claim"):
            bob.decide(esc.id, "fail")
        assert stack.audit(esc.id) == ["escalation.claim"]
        with pytest.raises(ConflictError):
            bob.claim_escalation(esc.id)  # claimed already: a plain claim does not move it
        moved = bob.claim_escalation(esc.id, take_over=True, reason="alice is off shift")
        assert moved.claimed_by is not None
        assert moved.claimed_by != claimed.claimed_by
        with pytest.raises(ConflictError, match="holds the claim"):
            alice.decide(esc.id, "fail")
        done = bob.decide(esc.id, "cancel", reason="customer withdrew")
        assert done.escalation.status in ("decided", "resolved")
    assert stack.audit(esc.id) == [
        "escalation.cancel", "escalation.claim", "escalation.takeover_claim",
    ]  # fmt: skip
    assert stack.settled(jobs[0]) == "cancelled"


def test_the_api_lists_pages_scopes_and_checks_roles_and_kinds(stack: Stack) -> None:
    """List with filters, a cursor and a total; another tenant sees none of it (404 on read);
    a key without the operator scope cannot decide (403), a non-admin cannot patch (403);
    `resume` on a page-changed escalation is 422 naming the field; an Idempotency-Key
    replays the first answer."""
    tenant = f"list-{secrets.token_hex(2)}"
    jobs, _ = stack.park(stack.key(tenant), 3)
    reader = stack.key(tenant)
    with Client(stack.url, reader) as pw:
        first = pw.escalations(state="open", kind="page_changed", limit=2)
        assert first.total == 3
        assert len(first.data) == 2
        assert first.next_cursor
        rest = pw.escalations(state="open", kind="page_changed", limit=2, cursor=first.next_cursor)
        assert rest.total == 3
        assert len(rest.data) == 1
        assert rest.next_cursor is None
        seen = {e.job_id for e in [*first.data, *rest.data]}
        assert seen == set(jobs)
        assert pw.escalations(portal="no-such-portal").total == 0
        assert pw.escalations(selector_key="value", state="open").total == 3
        one = pw.get_escalation(first.data[0].id)
        assert one.actions == ["retry", "fail", "cancel"]
        assert one.links["job"] == f"/v1/jobs/{one.job_id}"
        with pytest.raises(ForbiddenError):
            pw.decide(one.id, "retry")
    with Client(stack.url, stack.key(f"other-{secrets.token_hex(2)}", "jobs admin")) as other:
        assert other.escalations().total == 0
        with stack.api(stack.key(f"other-{secrets.token_hex(2)}", "jobs admin")) as raw:
            assert raw.get(f"/v1/escalations/{one.id}").status_code == 404
            assert raw.post(f"/v1/escalations/{one.id}/decide",
                            json={"action": "fail"}).status_code == 404  # fmt: skip
    operator = stack.key(tenant, "jobs operator")
    with stack.api(operator) as op:
        wrong = op.post(f"/v1/escalations/{one.id}/decide", json={"action": "resume", "value": 1})
        assert wrong.status_code == 422
        assert wrong.json()["fields"][0]["field"] == "action"
        refused = op.post(f"/v1/escalations/{one.id}/patch", json={"selectors": {"value": "p.x"}})
        assert refused.status_code == 403
        headers = {"idempotency-key": f"k-{secrets.token_hex(4)}"}
        body = {"action": "retry", "reason": "try again"}
        first_answer = op.post(f"/v1/escalations/{one.id}/decide", json=body, headers=headers)
        assert first_answer.status_code == 200, first_answer.text

        def replayed() -> httpx.Response | None:
            # 409 idempotency_in_flight until the first answer is stored (documented)
            answer = op.post(f"/v1/escalations/{one.id}/decide", json=body, headers=headers)
            return answer if answer.headers.get("idempotent-replayed") else None

        again = wait_until_sync(replayed, timeout=30)
        assert isinstance(again, httpx.Response)
        assert again.status_code == 200
        assert again.json() == first_answer.json()
    assert stack.audit(one.id) == ["escalation.retry"]
    with Client(stack.url, stack.key(tenant, "jobs admin")) as admin:  # the others: cleanup
        for esc in rest.data + first.data[1:]:
            admin.decide(esc.id, "cancel")


def test_one_selector_patch_resumes_every_job_parked_on_that_selector(stack: Stack) -> None:
    """Four jobs park on the same missing selector; one patch through the API makes a new
    selector-map version, retries all four (one audit row each) and each escalation shows
    the new selector; all four succeed and nothing stays parked on that selector."""
    tenant = f"patch-{secrets.token_hex(2)}"
    jobs, fresh = stack.park(stack.key(tenant), 4)
    escalations = [stack.parked(j) for j in jobs]
    origin = escalations[0]
    assert origin is not None
    with Client(stack.url, stack.key(tenant, "jobs admin")) as admin:
        result = admin.patch_selectors(origin.id, {"value": f"p.{fresh}"}, reason="new markup")
        assert result.selector_version is not None
        others = {e.id for e in escalations[1:] if e is not None}
        assert set(result.also_retried) == others
        assert result.skipped == []
        for job_id in jobs:
            assert stack.settled(job_id) == "succeeded"
        assert admin.escalations(selector_key="value", state="unresolved").total == 0
        for esc_id in others:
            assert stack.audit(esc_id) == ["escalation.retry"]
            shown = admin.get_escalation(esc_id)
            assert shown.decision is not None
            assert shown.decision["selectors"] == {"value": f"p.{fresh}"}
    assert stack.audit(origin.id) == ["escalation.patch"]
    for job_id in jobs:
        assert stack.store.jobs.get(job_id).output == {
            "value": f"hello {fresh}-{jobs.index(job_id)}", "count": 1,
        }  # fmt: skip
    with closing(stack.operator()) as http:
        queue = http.get("/console/escalations?show=all").text
    assert f"value = p.{fresh}" in queue


def test_console_controls_fit_the_escalation_kind(stack: Stack) -> None:
    """A page-changed escalation of an HTTP-only job: no "resolve with input", a patch form,
    no live-browser link, and take-over refused (409 page, not JSON). A question with known
    options: radio choices, the rejection reason on top, no patch form; an answer outside
    the options is refused on the page (422 HTML) and nothing is audited."""
    tenant = f"kinds-{secrets.token_hex(2)}"
    jobs, _ = stack.park(stack.key(tenant), 2)
    esc = stack.parked(jobs[0])
    assert esc is not None
    with closing(stack.operator()) as http:
        question = _kinds_in_the_console(stack, http, esc.id, jobs)
    with Client(stack.url, stack.key(tenant, "jobs admin")) as admin:
        for job_id in jobs:
            for open_ in stack.store.jobs.escalations(job_id=job_id, status="unresolved"):
                if open_.kind == "page_changed":
                    admin.decide(open_.id, "cancel")
        wrong = stack.api(stack.key(tenant, "jobs admin"))
        with wrong:
            refused = wrong.post(f"/v1/escalations/{question}/patch",
                                 json={"selectors": {"value": "p.v"}})  # fmt: skip
        assert refused.status_code == 422
        assert refused.json()["fields"][0]["field"] == "selectors"


def _kinds_in_the_console(stack: Stack, http: httpx.Client, esc_id: str, jobs: list[str]) -> str:
    csrf = http.headers["x-test-csrf"]
    missing = http.get("/console/jobs/no-such-job")
    assert missing.status_code == 404
    assert 'href="/console/escalations"' in missing.text  # the 404 page keeps the navigation
    page = http.get(f"/console/escalations/{esc_id}").text
    assert 'id="resolve"' not in page
    assert 'id="patch-form"' in page
    assert 'id="live-browser-link"' not in page
    taken = http.post(f"/console/jobs/{jobs[0]}/live/take", data={"csrf_token": csrf})
    assert taken.status_code == 409
    assert taken.headers["content-type"].startswith("text/html")
    assert "no browser" in taken.text
    blank = {"csrf_token": csrf, "selector_key": "value", "selector": " "}
    empty = http.post(f"/console/escalations/{esc_id}/patch", data=blank)
    assert empty.status_code == 422
    assert empty.headers["content-type"].startswith("text/html")
    assert "empty" in empty.text

    # a question escalation (as the job board raises), on the other parked job's record
    job = stack.store.jobs.get(jobs[1])
    with stack.store.engine.begin() as conn:
        question = stack.store.jobs.open_escalation(
            conn, job, kind="unsure_field", step="answer-style-1",
            reason="working_style: no confident answer",
            details={"field": "working_style", "label": "How do you like to work?",
                     "options": [["flexible", "Flexible"], ["structured", "Structured"]],
                     "reason": "the answer 'chaotic' was not usable: no option close enough"},
        )  # fmt: skip
    page = http.get(f"/console/escalations/{question}").text
    assert 'type="radio" name="value" value="flexible"' in page
    assert 'type="radio" name="value" value="structured"' in page
    assert "the answer &#39;chaotic&#39; was not usable" in page
    assert 'id="patch-form"' not in page
    bad = http.post(f"/console/escalations/{question}/resolve",
                    data={"csrf_token": csrf, "value": "whatever"})  # fmt: skip
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")
    assert "choose one of the known answers" in bad.text
    assert stack.audit(question) == []
    return question


PHONE_CHECK = """() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
                            return (x + 0.05) / (y + 0.05); };
  const header = getComputedStyle(document.querySelector('header.top')).backgroundColor;
  const navLinks = [...document.querySelectorAll('header.top nav a')];
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    navOutside: navLinks.filter((a) => a.getBoundingClientRect().right > window.innerWidth + 1)
                        .map((a) => a.textContent),
    navContrast: Math.min(...navLinks.map((a) => ratio(getComputedStyle(a).color, header))),
    cutPills: [...document.querySelectorAll('.pill, .badge')]
      .filter((p) => p.scrollWidth > p.clientWidth + 1 ||
                     p.getBoundingClientRect().right > window.innerWidth + 1)
      .map((p) => p.textContent),
  };
}"""


def test_the_on_call_pages_fit_a_390px_phone(stack: Stack) -> None:
    """In real Chromium at 390 px: the queue, an escalation, the jobs list and the audit
    page do not scroll sideways, every nav link is on screen with contrast of at least
    4.5:1 against the header, and no status pill or badge is cut."""
    from playwright.sync_api import sync_playwright

    from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium

    jobs, _ = stack.park(stack.key(f"phone-{secrets.token_hex(2)}"), 1)
    esc = stack.parked(jobs[0])
    assert esc is not None
    email = f"phone-{secrets.token_hex(3)}@example.test"
    stack.store.console.create_operator(
        email=email, password_hash=hash_password(PASSWORD), role="operator", tenant_id=None
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            page.goto(f"{stack.url}/console/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/console/")
            paths = ("/console/escalations", f"/console/escalations/{esc.id}",
                     "/console/jobs", f"/console/jobs/{jobs[0]}", "/console/audit")  # fmt: skip
            for path in paths:
                page.goto(stack.url + path)
                found = page.evaluate(PHONE_CHECK)
                assert found["overflow"] <= 0, (path, found)
                assert found["navOutside"] == [], (path, found)
                assert found["navContrast"] >= 4.5, (path, found)
                assert found["cutPills"] == [], (path, found)
        finally:
            browser.close()


def test_keys_create_operator_grants_the_operator_scope(db_url: str, tmp_path: Path) -> None:
    """`portwright keys create --operator` issues a key with the operator scope (what
    claiming and deciding escalations through the API need); without it, none."""
    import os
    import subprocess
    import sys

    from portwright.gateway.auth import parse_key

    def create(*flags: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "portwright.cli", "keys", "create", "--tenant", "ops",
             *flags, "--data-dir", str(tmp_path), "--database-url", db_url],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        parsed = parse_key(done.stdout.strip().splitlines()[-1])
        assert parsed is not None
        return parsed[0]

    operator, plain = create("--operator"), create()
    store = Store.open(db_url)
    try:
        with_scope = store.accounts.key_by_prefix(operator)
        without = store.accounts.key_by_prefix(plain)
        assert with_scope is not None
        assert without is not None
        assert with_scope.scope_set == frozenset({"jobs", "operator"})
        assert without.scope_set == frozenset({"jobs"})
    finally:
        store.close()


def test_a_take_over_and_its_hand_back_are_on_the_jobs_timeline(stack: Stack) -> None:
    """Taking over a job's live browser and handing it back each leave a control event on
    the job's timeline (with the operator as actor), besides the audit rows."""
    tenant = f"take-{secrets.token_hex(2)}"
    stack.store.portals.set_paused("echo", paused=True, reason="hold for the take-over")
    try:
        with stack.api(stack.key(tenant)) as api:
            body = {"adapter": "echo", "input": {"url": stack.world.url("echo"), "key": "t"}}
            made = api.post("/v1/jobs", json=body)
            assert made.status_code == 202, made.text
            job_id = made.json()["id"]
        with closing(stack.operator()) as http:
            csrf = http.headers["x-test-csrf"]
            for action in ("take", "release"):
                done = http.post(f"/console/jobs/{job_id}/live/{action}", data={"csrf_token": csrf})
                assert done.status_code == 303, done.text
            timeline = http.get(f"/console/jobs/{job_id}").text
        controls = [(e.meta.get("action"), e.actor) for e in stack.store.jobs.events(job_id)
                    if e.kind == "control"]  # fmt: skip
        assert [a for a, _ in controls] == ["live.take", "live.release"]
        assert all(actor.startswith("op:") for _, actor in controls)
        assert "live.take" in timeline
        assert "live.release" in timeline
    finally:
        stack.store.portals.set_paused("echo", paused=False, reason=None)
    with Client(stack.url, stack.key(tenant)) as pw:
        pw.cancel(job_id)


def test_a_decision_recorded_but_never_delivered_reaches_its_job(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between recording a decision and messaging the job (simulated: the decision
    is recorded with no message sent) does not strand the job: the janitor delivers it.
    Its scan comes every 0.5 s for decisions 1 s old (not 5 s and 10 s): the same
    redelivery, without the test waiting out a production cadence."""
    from portwright.orchestrator import _janitor
    from portwright.store import AuditNote

    monkeypatch.setattr(_janitor, "DECISION_REDELIVER_AFTER_S", 1.0)
    monkeypatch.setattr(_janitor, "ORPHAN_EVERY_S", 0.5)

    jobs, _ = stack.park(stack.key(f"lost-{secrets.token_hex(2)}"), 1)
    esc = stack.parked(jobs[0])
    assert esc is not None
    decision = {"action": "cancel", "value": None, "reason": "recorded, then the gateway died",
                "actor": "op:crashed@example.test"}  # fmt: skip
    note = AuditNote("op:crashed@example.test", "escalation.cancel", {}, {"decision": "cancel"})
    recorded = stack.store.escalations.decide(
        esc.id, actor="op:crashed@example.test", decision=decision, note=note
    )
    assert recorded.won
    assert stack.settled(jobs[0]) == "cancelled"
    done = stack.store.jobs.escalation(esc.id)
    assert (done.status, done.resolved_by) == ("resolved", "op:crashed@example.test")


def test_a_bulk_decision_fails_a_filtered_selection_one_audited_decision_each(
    stack: Stack,
) -> None:
    """`POST /v1/escalations/bulk`: a viewer key gets 403, no filter 422, a selection over the
    cap 422 deciding nothing; an operator fails every open page-changed escalation of the
    portal in its tenant — one compare-and-set decision and one audit row each — leaving
    another operator's claim and another tenant's escalation alone; the Idempotency-Key
    replays the answer."""
    tenant = f"bulk-{secrets.token_hex(2)}"
    jobs, _ = stack.park(stack.key(tenant), 3)
    other_jobs, _ = stack.park(stack.key(f"bulk-other-{secrets.token_hex(2)}"), 1)
    escalations = [stack.parked(j) for j in jobs]
    held = escalations[0]
    assert held is not None
    with Client(stack.url, stack.key(tenant, "jobs operator")) as alice:
        alice.claim_escalation(held.id)
    with Client(stack.url, stack.key(tenant)) as viewer, pytest.raises(ForbiddenError):
        viewer.decide_many("fail", portal="echo")
    tenant_id = stack.store.tenants.ensure(tenant).id
    with pytest.raises(SelectionTooLargeError, match="more than 2 at once"):
        asyncio.run(
            decide_escalations(
                stack.service, "fail", actor="test", tenant_id=tenant_id, portal="echo", cap=2
            )
        )
    assert all(stack.audit(e.id) == [] for e in escalations[1:] if e is not None)
    with stack.api(stack.key(tenant, "jobs operator")) as bob:
        unfiltered = bob.post("/v1/escalations/bulk", json={"action": "fail"})
        assert unfiltered.status_code == 422
        assert unfiltered.json()["fields"][0]["field"] == "portal"
        headers = {"idempotency-key": f"bulk-{secrets.token_hex(4)}"}
        body = {"action": "fail", "portal": "echo", "kind": "page_changed", "reason": "gone"}
        answer = bob.post("/v1/escalations/bulk", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        result = answer.json()

        def replayed() -> httpx.Response | None:
            again = bob.post("/v1/escalations/bulk", json=body, headers=headers)
            return again if again.headers.get("idempotent-replayed") else None

        again = wait_until_sync(replayed, timeout=30)
        assert isinstance(again, httpx.Response)
        assert again.json() == result
    assert result["matched"] == 3
    decided = {e["id"] for e in result["decided"]}
    assert decided == {e.id for e in escalations[1:] if e is not None}
    assert [s["id"] for s in result["skipped"]] == [held.id]
    assert "holds the claim" in result["skipped"][0]["reason"]
    for esc_id in decided:
        assert stack.audit(esc_id) == ["escalation.fail"]
    for job_id in jobs[1:]:
        assert stack.settled(job_id) == "failed"
    assert stack.audit(held.id) == ["escalation.claim"]
    assert stack.parked(other_jobs[0]) is not None, "another tenant's escalation is untouched"
    assert stack.store.jobs.get(jobs[0]).status != "failed"
    with Client(stack.url, stack.key(tenant, "jobs admin")) as admin:  # cleanup
        admin.claim_escalation(held.id, take_over=True)
        admin.decide(held.id, "cancel")
    other = stack.parked(other_jobs[0])
    assert other is not None
    asyncio.run(stack.service.decide(other.id, "cancel", actor="test-cleanup"))


def test_the_console_queue_bulk_form_cancels_the_filtered_selection(stack: Stack) -> None:
    """An operator of one tenant filters the queue by portal and cancels every open
    escalation shown in one form (one audit row each; another tenant's untouched); no
    filter is refused on the page (422); a viewer sees no form and gets 403."""
    tenant = f"cbulk-{secrets.token_hex(2)}"
    jobs, _ = stack.park(stack.key(tenant), 2)
    other_jobs, _ = stack.park(stack.key(f"cbulk-other-{secrets.token_hex(2)}"), 1)
    escalations = [stack.parked(j) for j in jobs]
    viewer = stack.operator("viewer", tenant=tenant)
    op = stack.operator("operator", tenant=tenant)
    with closing(viewer), closing(op):
        assert 'id="bulk"' not in viewer.get("/console/escalations?show=open&portal=echo").text
        denied = viewer.post("/console/escalations/bulk",
                             data={"csrf_token": viewer.headers["x-test-csrf"],
                                   "action": "cancel", "portal": "echo"})  # fmt: skip
        assert denied.status_code == 403
        queue = op.get("/console/escalations?show=open&portal=echo").text
        assert 'id="bulk"' in queue
        assert 'id="bulk"' not in op.get("/console/escalations?show=open").text
        csrf = op.headers["x-test-csrf"]
        unfiltered = op.post("/console/escalations/bulk", data={"csrf_token": csrf,
                                                                "action": "cancel"})  # fmt: skip
        assert unfiltered.status_code == 422
        assert "needs a filter" in unfiltered.text
        done = op.post("/console/escalations/bulk",
                       data={"csrf_token": csrf, "action": "cancel", "portal": "echo",
                             "reason": "customer withdrew"})  # fmt: skip
        assert done.status_code == 303, done.text[:300]
        shown = op.get(done.headers["location"]).text
        assert "Decided 2; left alone 0" in shown
    for esc in escalations:
        assert esc is not None
        assert stack.audit(esc.id) == ["escalation.cancel"]
    for job_id in jobs:
        assert stack.settled(job_id) == "cancelled"
    other = stack.parked(other_jobs[0])
    assert other is not None, "another tenant's escalation is untouched"
    asyncio.run(stack.service.decide(other.id, "cancel", actor="test-cleanup"))


def test_the_queue_works_from_the_keyboard_with_visible_focus(stack: Stack) -> None:
    """In real Chromium: j / k move a visible selection through the queue's rows, Enter opens
    the selected escalation; a link reached with Tab shows a 3 px focus outline."""
    from playwright.sync_api import sync_playwright

    from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium

    tenant = f"keys-{secrets.token_hex(2)}"
    stack.park(stack.key(tenant), 2)
    email = f"keys-{secrets.token_hex(3)}@example.test"
    stack.store.console.create_operator(
        email=email, password_hash=hash_password(PASSWORD), role="operator",
        tenant_id=stack.store.tenants.ensure(tenant).id,
    )  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            page.goto(f"{stack.url}/console/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/console/")
            page.goto(f"{stack.url}/console/escalations?show=open")
            rows = page.eval_on_selector_all(
                "table.queue tr.esc", "rs => rs.map(r => r.dataset.escalation)"
            )
            assert len(rows) == 2

            def selected() -> list[str]:
                return list(page.eval_on_selector_all(
                    "table.queue tr.esc.selected", "rs => rs.map(r => r.dataset.escalation)"
                ))  # fmt: skip

            page.locator("h1").click()  # focus on the page, not a field
            page.keyboard.press("j")
            assert selected() == [rows[0]]
            page.keyboard.press("j")
            assert selected() == [rows[1]]
            page.keyboard.press("j")  # stays on the last row
            assert selected() == [rows[1]]
            page.keyboard.press("k")
            assert selected() == [rows[0]]
            outline = page.eval_on_selector(
                "tr.esc.selected", "r => getComputedStyle(r).outlineWidth"
            )
            assert outline == "3px"
            page.keyboard.press("Enter")
            page.wait_for_url(f"**/console/escalations/{rows[0]}")
            page.keyboard.press("Tab")
            width = page.evaluate("() => getComputedStyle(document.activeElement).outlineWidth")
            assert width == "3px"
        finally:
            browser.close()


def test_console_times_are_shown_in_the_configured_zone_with_its_name(stack: Stack) -> None:
    """UTC by default; with `display_timezone` the same escalation's time is shown in that
    zone with the zone's name; an unknown zone is refused naming the setting."""
    with pytest.raises(ValidationError, match="display_timezone"):
        Settings(display_timezone="Mars/Olympus_Mons")
    jobs, _ = stack.park(stack.key(f"tz-{secrets.token_hex(2)}"), 1)
    esc = stack.parked(jobs[0])
    assert esc is not None
    at = datetime.fromtimestamp(esc.created_at, UTC)
    india = at.astimezone(ZoneInfo("Asia/Kolkata"))  # +05:30 all year: no DST surprises
    with closing(stack.operator()) as http:
        page = http.get(f"/console/escalations/{esc.id}").text
    assert at.strftime("%Y-%m-%d %H:%M:%S UTC") in page
    zoned = stack.service.rt.settings.model_copy(update={"display_timezone": "Asia/Kolkata"})
    server = ServerThread(create_app(stack.service, zoned)).start()
    try:
        other = Stack(stack.service, server.url, stack.world)
        with closing(other.operator()) as http:
            page = http.get(f"/console/escalations/{esc.id}").text
            queue = http.get("/console/escalations?show=open").text
    finally:
        server.stop()
    assert india.strftime("%Y-%m-%d %H:%M:%S IST") in page
    assert india.strftime("%Y-%m-%d %H:%M:%S IST") in queue
    assert at.strftime("%Y-%m-%d %H:%M:%S UTC") not in page
    asyncio.run(stack.service.decide(esc.id, "cancel", actor="test-cleanup"))
