"""Operators at scale, the rest: portal cooldowns steered by operators (API and console),
links between a job and its dead letters and credentials, what an operator changed during
a take-over, compact audit rows, and the on-call pages in real Chromium at 1440 and 390 px.

A real gateway and console on SQLite and PostgreSQL, the sandbox's echo page, real Chromium.
Screenshots land in `tests/console/screenshots/` (named `operators-<page>-<width>.png`).
"""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import BaseModel

from portwright.adapters import AdapterRegistry
from portwright.client import Client
from portwright.console import hash_password
from portwright.console._credentials import PAGE as CRED_PAGE
from portwright.console._dead_letters import PAGE as DL_PAGE
from portwright.console._pages import PAGE as AUDIT_PAGE
from portwright.console._render import _change
from portwright.console._takeover import field_changes, release_note
from portwright.engines.browser import CONTROL_NOTE, LIVE_NOTE
from portwright.gateway import create_app
from portwright.orchestrator import CREDENTIALS_NOTE, JobService, Runtime
from portwright.resources import StaticSecrets
from portwright.resources.vault import Vault
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.sdk import Adapter, Job, StepContext, linear_machine
from portwright.settings import Settings
from portwright.store import DeliveryFilter
from portwright.store._schema import deliveries
from portwright.testing import EchoAdapter, wait_until_sync
from tests.conftest import SKIP_PG, pg_database
from tests.gateway._support import ServerThread
from tests.support import reaching
from tests.test_escalations_at_scale import PASSWORD, PHONE_CHECK, Stack, _off_loop

SHOTS = Path(__file__).parent / "console" / "screenshots"
SECRET = "hunter2-portal-password"


class LoginInput(BaseModel):
    url: str
    key: str


async def _login(sc: StepContext, url: str, key: str) -> str:
    password = await sc.secret("portal-login")
    await sc.secret("portal-login")  # asked twice: noted once
    response = await sc.http.get(url, params={"k": key, "s": "0"})
    return f"{response.status_code}:{len(password)}"


class LoginAdapter(Adapter[LoginInput]):
    """Opens a stored credential, then fetches the echo page (its portal is `login-echo`)."""

    name: ClassVar[str] = "login-echo"
    input_model = LoginInput
    machine = linear_machine("login-echo", ["LOGGING_IN"])
    selectors: ClassVar[Mapping[str, str]] = {}

    async def run(self, job: Job[LoginInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("LOGGING_IN")
        return {"status": await job.step("login", _login, job.input.url, job.input.key)}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"ops-{request.param}")
    if request.param == "postgres":
        if SKIP_PG:
            pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
        databases = pg_database("pw_ops")
        url = next(databases)
    else:
        databases = None
        url = f"sqlite:///{tmp / 'app.sqlite'}"
    with SandboxWorld([echo_service()], seed=5) as world:
        settings = reaching(
            Settings(
                data_dir=tmp / "data", database_url=url, worker_id=f"ops-{secrets.token_hex(3)}",
                heartbeat_interval_s=0.5, dead_worker_after_s=5.0, queue_polling_interval_s=0.05,
                log_json=False,
            ),
            world,
        )  # fmt: skip
        registry = AdapterRegistry()
        registry.register(EchoAdapter)
        registry.register(LoginAdapter)
        runtime = Runtime(settings, registry, secrets=StaticSecrets({"portal-login": SECRET}))
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


def _zoned(stack: Stack, zone: str) -> tuple[ServerThread, Stack]:
    """A second gateway on the same runtime whose console shows times in `zone`."""
    settings = stack.service.rt.settings.model_copy(update={"display_timezone": zone})
    server = ServerThread(create_app(stack.service, settings)).start()
    return server, Stack(stack.service, server.url, stack.world)


def _submit(stack: Stack, key: str, adapter: str = "echo", name: str = "") -> str:
    body = {"adapter": adapter, "input": {"url": stack.world.url("echo"), "key": name or "k"}}
    with stack.api(key) as http:
        made = http.post("/v1/jobs", json=body)
        assert made.status_code == 202, made.text
        return str(made.json()["id"])


def _cooldowns(stack: Stack, portal: str) -> list[Any]:
    return [a for a in stack.store.audit.search(target_id=portal) if a.action == "portal.cooldown"]


# -- portal cooldowns ---------------------------------------------------------------------------


def test_an_operator_extends_and_an_admin_ends_a_portal_cooldown_through_the_api(
    stack: Stack,
) -> None:
    """`POST /v1/portals/{name}/cooldown` needs the operator scope, cools the portal down
    for the given seconds (audited with cause `operator`, replayed under the same
    Idempotency-Key without a second row) and never shortens a longer one;
    `/cooldown/end` needs admin, ends it now (audited, `ended`), and a job waiting the
    cooldown out goes on within seconds, not after the 10 minutes; bad input is a 422
    naming the field."""
    tenant = f"cool-{secrets.token_hex(2)}"
    jobs_key, operator, admin = (stack.key(tenant), stack.key(tenant, "jobs operator"),
                                 stack.key(tenant, "jobs operator admin"))  # fmt: skip
    current = stack.service.rt.selectors_for(EchoAdapter).selectors["value"]
    stack.world.context("echo").options["markup_class"] = current.removeprefix("p.")
    first = _submit(stack, jobs_key, name="first")
    wait_until_sync(lambda: stack.store.jobs.get(first).status == "succeeded", timeout=60)
    before = {a.id for a in _cooldowns(stack, "echo")}
    with stack.api(jobs_key) as plain, stack.api(operator) as op, stack.api(admin) as adm:
        refused = plain.post("/v1/portals/echo/cooldown", json={"seconds": 60})
        assert refused.status_code == 403, refused.text
        assert "operator scope" in refused.json()["message"]
        bad = op.post("/v1/portals/echo/cooldown", json={"seconds": 0})
        assert bad.status_code == 422
        assert bad.json()["fields"][0]["field"] == "seconds"
        missing = op.post("/v1/portals/no-such/cooldown", json={"seconds": 60})
        assert missing.status_code == 404
        assert "echo" in missing.json()["known"]
        started = time.time()
        key = {"idempotency-key": f"cool-{secrets.token_hex(4)}"}
        cooled = op.post("/v1/portals/echo/cooldown", json={"seconds": 600, "reason": "maint"},
                         headers=key)  # fmt: skip
        assert cooled.status_code == 200, cooled.text
        until = cooled.json()["cooldown_until"]
        assert started + 599 <= until <= time.time() + 601

        def replayed() -> httpx.Response | None:
            # 409 idempotency_in_flight until the first answer is stored (documented)
            answer = op.post("/v1/portals/echo/cooldown",
                             json={"seconds": 600, "reason": "maint"}, headers=key)  # fmt: skip
            return answer if answer.headers.get("idempotent-replayed") else None

        again = wait_until_sync(replayed, timeout=30)
        assert isinstance(again, httpx.Response)
        assert again.json()["cooldown_until"] == until
        shorter = op.post("/v1/portals/echo/cooldown", json={"seconds": 30})
        assert shorter.json()["cooldown_until"] == until  # never shortened
        rows = [a for a in _cooldowns(stack, "echo") if a.id not in before]
        assert len(rows) == 1
        assert rows[0].after["cause"] == "operator"
        assert rows[0].reason == "maint"
        assert rows[0].actor.startswith("api:")

        waiting = _submit(stack, jobs_key, name="second")
        cooldown_state = stack.service.rt.machine_of("echo").engine.cooldown
        wait_until_sync(lambda: stack.store.jobs.get(waiting).state == cooldown_state, timeout=60)
        assert op.post("/v1/portals/echo/cooldown/end").status_code == 403
        ended = adm.post("/v1/portals/echo/cooldown/end", json={"reason": "portal is fine"})
        assert ended.status_code == 200, ended.text
        assert ended.json()["cooldown_until"] <= time.time()
        woke = time.monotonic()
        # It reads the gate again within 10 s (it used to sleep up to 60 s at a time).
        wait_until_sync(lambda: stack.store.jobs.get(waiting).status == "succeeded", timeout=40)
        assert time.monotonic() - woke < 40  # not the 600 s it was cooled down for
        unchanged = adm.post("/v1/portals/echo/cooldown/end")
        assert unchanged.status_code == 200  # nothing to end: no change, no audit row
    end_rows = [a for a in _cooldowns(stack, "echo") if (a.after or {}).get("ended")]
    assert len(end_rows) == 1
    assert end_rows[0].reason == "portal is fine"
    assert end_rows[0].before["cooldown_until"] == until
    with Client(stack.url, admin) as pw:  # the Python client's calls
        portal = pw.extend_cooldown("echo", 120, reason="client")
        assert portal.cooldown_until is not None
        assert portal.cooldown_until > time.time() + 100
        ended_by_client = pw.end_cooldown("echo", reason="client done")
        assert ended_by_client.cooldown_until is not None
        assert ended_by_client.cooldown_until <= time.time()


def test_the_console_portal_page_cools_down_and_ends_early_in_the_display_zone(
    stack: Stack,
) -> None:
    """The portal page (and the dashboard) say "cooling down until" in the configured
    display zone with its name; any operator cools a portal down (a bad number is a 422
    page naming `minutes`), only a platform-wide operator ends it early (a tenant's
    operator gets 403), viewers get 403; each change is an audit row shown on the page."""
    tenant = f"cpage-{secrets.token_hex(2)}"
    _submit(stack, stack.key(tenant), name="portal-page")  # the portal exists
    wait_until_sync(lambda: any(p.name == "echo" for p in stack.store.portals.all()), timeout=30)
    server, zoned = _zoned(stack, "Asia/Kolkata")
    try:
        with (closing(zoned.operator()) as http, closing(zoned.operator(tenant=tenant)) as mine,
              closing(zoned.operator("viewer")) as viewer):  # fmt: skip
            csrf = http.headers["x-test-csrf"]
            bad = http.post("/console/portals/echo/cooldown",
                            data={"csrf_token": csrf, "minutes": "soon"})  # fmt: skip
            assert bad.status_code == 422
            assert "minutes" in bad.text
            seen = viewer.post(
                "/console/portals/echo/cooldown",
                data={"csrf_token": viewer.headers["x-test-csrf"], "minutes": "5"},
            )
            assert seen.status_code == 403
            done = mine.post("/console/portals/echo/cooldown",
                             data={"csrf_token": mine.headers["x-test-csrf"], "minutes": "90",
                                   "reason": "their maintenance window"})  # fmt: skip
            assert done.status_code == 303, done.text
            until = stack.store.portals.get("echo").cooldown_until
            assert until is not None
            shown = datetime.fromtimestamp(until, ZoneInfo("Asia/Kolkata"))
            page = http.get("/console/portals/echo").text
            assert f"cooling down until {shown.strftime('%H:%M:%S IST')}" in page
            assert shown.strftime("%Y-%m-%d %H:%M:%S IST") in page
            assert "their maintenance window" in page
            assert 'id="cooldown-end"' in page
            home = http.get("/console/").text
            assert f"cooling down until {shown.strftime('%H:%M:%S IST')}" in home
            assert 'href="/console/portals/echo"' in home
            assert 'id="cooldown-end"' not in mine.get("/console/portals/echo").text
            refused = mine.post("/console/portals/echo/cooldown/end",
                                data={"csrf_token": mine.headers["x-test-csrf"]})  # fmt: skip
            assert refused.status_code == 403
            ended = http.post("/console/portals/echo/cooldown/end",
                              data={"csrf_token": csrf, "reason": "window over"})  # fmt: skip
            assert ended.status_code == 303
            after = http.get("/console/portals/echo").text
            assert "cooling down until" not in after
            assert "window over" in after
    finally:
        server.stop()
    record = stack.store.portals.get("echo")
    assert record.cooldown_until is not None
    assert record.cooldown_until <= time.time()
    actors = [(a.actor, (a.after or {}).get("ended", False)) for a in _cooldowns(stack, "echo")]
    assert any(actor.startswith("op:operator-") and ended for actor, ended in actors)


# -- links: job <-> dead letters, job -> credentials ------------------------------------------


def test_a_job_page_links_its_dead_letters_and_the_credentials_it_opened(stack: Stack) -> None:
    """A job whose webhook could not be delivered links the dead letters of its events (the
    dead-letters page filtered to that job, which shows no other job's); a job that opened
    a stored credential names it (once, however often opened; never its value) and links it;
    each dead letter links back to its job."""
    store = stack.store
    tenant = store.tenants.ensure(f"links-{secrets.token_hex(2)}")
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    store.endpoints.create(
        tenant_id=tenant.id, url=f"http://127.0.0.1:{closed_port}/hook",
        secrets=["whsec_" + "b" * 24], topics=["job.succeeded"], max_attempts=1,
    )  # fmt: skip
    key = stack.key(tenant.name)
    ids = [_submit(stack, key, "login-echo", name=f"link-{n}") for n in range(2)]
    mine = DeliveryFilter(tenant_id=tenant.id)
    wait_until_sync(lambda: len(store.deliveries.search(mine, status="dead")) == 2, timeout=90)
    assert store.jobs.get(ids[0]).notes[CREDENTIALS_NOTE] == ["portal-login"]
    with closing(stack.operator(tenant=tenant.name)) as http:
        page = http.get(f"/console/jobs/{ids[0]}").text
        assert f'href="/console/dead-letters?job={ids[0]}"' in page
        assert "1 undelivered event" in page
        assert 'href="/console/credentials?q=portal-login"' in page
        assert SECRET not in page
        listed = http.get("/console/dead-letters", params={"job": ids[0]}).text
        (dead,) = store.deliveries.search(DeliveryFilter(tenant_id=tenant.id, job_id=ids[0]))
        assert f'data-delivery="{dead.id}"' in listed
        assert f'href="/console/jobs/{ids[0]}"' in listed  # and back
        assert f'href="/console/jobs/{ids[1]}"' not in listed
        assert "1 dead letter, showing the newest 1" in listed
        assert "2 dead letters" in http.get("/console/dead-letters").text
        plain = _submit(stack, key, name="no-secret")
        wait_until_sync(lambda: store.jobs.get(plain).status == "succeeded", timeout=60)
        assert "none opened" in http.get(f"/console/jobs/{plain}").text


# -- pagers with counts: dead letters, credentials; credential -> the jobs that used it ---------


def _pages(http: httpx.Client, path: str, row: str) -> tuple[list[list[str]], list[str]]:
    """Follow a list's "Next" pager from `path` to its end: each page's row ids (the
    `data-<row>` attributes) and each page's count line."""
    pages, counts = [], []
    while True:
        answer = http.get(path)
        assert answer.status_code == 200, answer.text
        pages.append(re.findall(rf'data-{row}="([^"]+)"', answer.text))
        counts.append(re.search(r'<p class="count muted"[^>]*>([^<]+)</p>', answer.text)[1])  # type: ignore[index]
        nxt = re.search(r'id="next-page" class="button small" href="\?([^"]+)"', answer.text)
        if nxt is None:
            return pages, counts
        path = f"{path.split('?', maxsplit=1)[0]}?{html.unescape(nxt[1])}"


def test_the_dead_letters_page_pages_through_every_dead_letter_with_its_count(
    stack: Stack,
) -> None:
    """More dead letters than a page: the count names them all, the pager walks every one
    newest first exactly once (two share an event time), filters carry over, and a
    forged cursor is a 422 naming the field."""
    store = stack.store
    tenant = store.tenants.ensure(f"dl-pages-{secrets.token_hex(2)}")
    now = time.time()
    made = [
        {"id": f"dlv_page{n:03d}{secrets.token_hex(2)}", "outbox_id": n, "event_id": f"evt:{n}",
         "endpoint_id": "ep_pages", "tenant_id": tenant.id, "topic": "job.succeeded",
         "status": "dead", "attempts": 3, "next_attempt_at": now, "last_error": "refused",
         "event_at": now - (n if n != 1 else 0), "created_at": now, "finished_at": now}
        for n in range(DL_PAGE + 3)
    ]  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(deliveries.insert(), made)
    newest = sorted(made, key=lambda d: (d["event_at"], d["id"]), reverse=True)
    with closing(stack.operator(tenant=tenant.name)) as http:
        pages, counts = _pages(http, "/console/dead-letters?topic=job.succeeded", "delivery")
        assert [len(p) for p in pages] == [DL_PAGE, 3]
        assert [d for p in pages for d in p] == [d["id"] for d in newest]
        assert counts == [f"{DL_PAGE + 3} dead letters, showing the newest {DL_PAGE}",
                          f"{DL_PAGE + 3} dead letters, showing 3"]  # fmt: skip
        assert _pages(http, "/console/dead-letters?topic=job.failed", "delivery")[0] == [[]]
        bad = http.get("/console/dead-letters", params={"cursor": "yesterday:dlv_x"})
        assert bad.status_code == 422
        assert "cursor" in bad.text


def test_the_audit_page_keeps_its_pager_shared_with_the_other_lists(stack: Stack) -> None:
    """The audit list renders the same pager: every row of a filter once, newest first."""
    store = stack.store
    tenant = store.tenants.ensure(f"audit-pages-{secrets.token_hex(2)}")
    target = f"paged-{secrets.token_hex(3)}"
    for n in range(AUDIT_PAGE + 2):
        store.audit.record(
            actor="op:test", action=f"test.page{n:02d}", target_type="thing", target_id=target,
            before=None, after={"n": n}, tenant_id=tenant.id,
        )  # fmt: skip
    with closing(stack.operator(tenant=tenant.name)) as http:
        pages, counts = _pages(http, f"/console/audit?target={target}", "action")
    newest_first = [f"test.page{n:02d}" for n in reversed(range(AUDIT_PAGE + 2))]
    assert [a for p in pages for a in p] == newest_first
    assert [len(p) for p in pages] == [AUDIT_PAGE, 2]
    assert counts[-1] == f"{AUDIT_PAGE + 2} audit rows, showing 2"


def test_the_credentials_list_pages_with_a_count_and_links_the_jobs_that_used_each(
    stack: Stack,
) -> None:
    """The credentials list counts and pages (the search narrows both); each credential
    links the jobs list filtered to the jobs that opened it, in its own tenant only."""
    store = stack.store
    vault = Vault.from_settings(stack.service.rt.settings, store=store)
    tenant = store.tenants.ensure(f"cred-pages-{secrets.token_hex(2)}")
    other = store.tenants.ensure(f"cred-other-{secrets.token_hex(2)}")
    names = sorted(["portal-login", *(f"site-{n:02d}@example.test" for n in range(CRED_PAGE + 1))])
    for name in names:
        vault.put(tenant.id, name, "not-shown")
    used = _submit(stack, stack.key(tenant.name), "login-echo", name="cred-a")
    unused = _submit(stack, stack.key(tenant.name), name="cred-b")
    elsewhere = _submit(stack, stack.key(other.name), "login-echo", name="cred-c")
    for job_id in (used, unused, elsewhere):
        wait_until_sync(lambda j=job_id: store.jobs.get(j).status == "succeeded", timeout=90)

    with closing(stack.operator(tenant=tenant.name)) as http:
        pages, counts = _pages(http, "/console/credentials", "credential")
        assert [c for p in pages for c in p] == names
        assert [len(p) for p in pages] == [CRED_PAGE, 2]
        assert counts[0] == f"{CRED_PAGE + 2} credentials, showing {CRED_PAGE}"
        narrowed, counts = _pages(http, "/console/credentials?q=PORTAL", "credential")
        assert narrowed == [["portal-login"]]
        assert counts == ["1 credential, showing 1"]
        assert http.get("/console/credentials?cursor=-1").status_code == 422
        listing = http.get("/console/credentials?q=portal-login").text
        link = html.unescape(re.search(r'class="muted cred-jobs" href="([^"]+)"', listing)[1])  # type: ignore[index]
        assert link == f"/console/jobs?credential=portal-login&tenant={tenant.id}&items=1"
        jobs = http.get(link).text
        assert f'data-job="{used}"' in jobs
        assert f'data-job="{unused}"' not in jobs
        assert "1 job," in jobs
        assert 'value="portal-login"' in jobs  # the filter shows what it filters on
    with closing(stack.operator("viewer")) as everyone:  # platform-wide: the link's tenant
        jobs = everyone.get(link).text
        assert f'data-job="{used}"' in jobs
        assert f'data-job="{elsewhere}"' not in jobs
        anywhere = everyone.get("/console/jobs?credential=portal-login&items=1").text
        assert f'data-job="{elsewhere}"' in anywhere
        assert f'data-job="{unused}"' not in anywhere


# -- a take-over's changes ---------------------------------------------------------------------

FORM = """<form><input name="name" value="Grace"><input name="location" value="">
<input type="password" name="password" value="s3cret"><input type="checkbox" name="remote">
<select name="style"><option value="a">A</option><option value="b">B</option></select></form>"""


def test_a_hand_back_records_what_the_operator_changed_on_the_page(stack: Stack) -> None:
    """In real Chromium: taking over a job's live page reads its form fields, handing it
    back reads them again, and the hand-back's timeline event and audit row carry every
    changed field as [before, after] (a password only as set, never its value)."""
    from playwright.sync_api import sync_playwright

    from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium

    tenant = f"diff-{secrets.token_hex(2)}"
    stack.store.portals.set_paused("echo", paused=True, reason="hold for the take-over")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:
        job_id = _submit(stack, stack.key(tenant), name="diff")
        with sync_playwright() as pw:
            args = [*CHROMIUM_ARGS, f"--remote-debugging-port={port}"]
            browser = pw.chromium.launch(executable_path=find_chromium(), args=args)
            try:
                page = browser.new_page()
                page.set_content(FORM)
                cdp = page.context.new_cdp_session(page)
                target = cdp.send("Target.getTargetInfo")["targetInfo"]["targetId"]
                note = {"endpoint": f"http://127.0.0.1:{port}", "target_id": target,
                        "published_at": time.time()}  # fmt: skip
                stack.store.jobs.remember(job_id, LIVE_NOTE, note)
                with closing(stack.operator()) as http:
                    csrf = http.headers["x-test-csrf"]
                    taken = http.post(f"/console/jobs/{job_id}/live/take",
                                      data={"csrf_token": csrf})  # fmt: skip
                    assert taken.status_code == 303, taken.text
                    kept = stack.store.jobs.recall(job_id, CONTROL_NOTE)["fields"]
                    assert kept["location"] == ""
                    assert kept["password"] == "••••••"
                    page.fill("input[name=location]", "Lisbon")
                    page.fill("input[name=password]", "changed-too")
                    page.check("input[name=remote]")
                    page.select_option("select[name=style]", "b")
                    back = http.post(f"/console/jobs/{job_id}/live/release",
                                     data={"csrf_token": csrf})  # fmt: skip
                    assert back.status_code == 303, back.text
                    timeline = http.get(f"/console/jobs/{job_id}").text
            finally:
                browser.close()
        (release,) = [e for e in stack.store.jobs.events(job_id)
                      if e.meta.get("action") == "live.release"]  # fmt: skip
        assert release.meta["changed"] == {
            "location": ["", "Lisbon"], "remote": ["", "on"], "style": ["a", "b"],
        }  # fmt: skip
        assert "location: &#39;∅&#39; → &#39;Lisbon&#39;" in timeline
        assert "changed-too" not in timeline
        (row,) = [a for a in stack.store.audit.search(target_id=job_id)
                  if a.action == "live.release"]  # fmt: skip
        assert row.after is not None
        assert row.after["changed"]["style"] == ["a", "b"]
    finally:
        stack.store.portals.set_paused("echo", paused=False, reason=None)
    asyncio.run(stack.service.cancel(job_id, actor="test-cleanup"))


def test_a_take_over_diff_claims_nothing_it_could_not_read() -> None:
    """No reading at take-over or at hand-back: no `changed` at all (not an empty one)."""
    assert release_note({"holder": "operator"}, {"a": "1", "b": ""}, "back") == (
        {"handed_back": {"a": "1"}},
        "back; the page was not readable at take-over; at hand-back it held a: '1'",
    )
    assert release_note({"holder": "operator"}, {"b": ""}, "back") == ({"handed_back": {}}, "back")
    assert release_note({"fields": {"a": "1"}}, None, "back") == ({}, "back")
    meta, reason = release_note({"fields": {"a": "1"}}, {"a": "1"}, "back")
    assert meta == {"changed": {}}
    assert reason == "back; no form field changed"
    assert field_changes({"a": "1"}, {"a": "2", "b": ""}) == {"a": ["1", "2"]}


# -- compact audit rows and the on-call pages in Chromium --------------------------------------


def test_an_audit_rows_change_fits_one_line() -> None:
    """The audit row's one-line change names each changed key with before → after."""
    assert _change({"status": "open", "job_id": "j1"}, {"status": "decided", "by": "op:a"}) == (
        "status: open → decided · by: op:a"
    )  # the job id is context, not a change
    assert _change({"paused": True}, None) == "paused: true → ∅"
    assert _change({"cooldown_until": 0.5}, {"cooldown_until": 86400.0}) == (
        "cooldown_until: 1970-01-01 00:00:00 UTC → 1970-01-02 00:00:00 UTC"
    )
    assert _change(None, {"paused": True}) == "paused: true"
    assert _change({"a": 1}, {"a": 1}) == "no change"
    many = _change({}, {f"k{n}": n for n in range(5)})
    assert many.endswith("· +2 more")


def test_the_on_call_pages_in_chromium_at_1440_and_390_px(stack: Stack) -> None:
    """In real Chromium at 1440 and 390 px: the queue, an escalation of each kind (page
    changed, a question, blocked, an alert), a job, the audit page and a portal page render
    without sideways scrolling
    (390 px: every nav link on screen, no pill cut); with 50 audit rows each row is one
    compact line (at most 40 px tall at 1440 px) and a row's before/after opens on demand.
    Each page is saved as a screenshot."""
    from playwright.sync_api import sync_playwright

    from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium

    tenant = f"shots-{secrets.token_hex(2)}"
    jobs, _ = stack.park(stack.key(tenant), 2)
    esc = stack.parked(jobs[0])
    assert esc is not None
    job = stack.store.jobs.get(jobs[1])
    with stack.store.engine.begin() as conn:
        question = stack.store.jobs.open_escalation(
            conn, job, kind="unsure_field", step="answer-style-1",
            reason="working_style: no confident answer",
            details={"field": "working_style", "label": "How do you like to work?",
                     "options": [["flexible", "Flexible"], ["structured", "Structured"]],
                     "reason": "the answer 'chaotic' was not usable: no option close enough"},
        )  # fmt: skip
        blocked = stack.store.jobs.open_escalation(
            conn, job, kind="blocked", step="fetch",
            reason="403 from the edge: every identity of the pool is burned",
            details={"status": 403, "rotated": 3},
        )  # fmt: skip
    alert = stack.store.jobs.open_alert(
        stack.store.jobs.get(jobs[0]), kind="provider_failing",
        reason="the captcha provider failed 5 times in 60 s", details={"failures": 5},
    )  # fmt: skip
    assert alert is not None
    for n in range(50):  # a page of audit rows
        stack.store.audit.record(
            actor="op:shots@example.test", action="escalation.retry", target_type="escalation",
            target_id=f"esc-{n}", before={"status": "open", "job_id": jobs[0]},
            after={"status": "decided", "decision": {"action": "retry"}}, reason="portal back",
            tenant_id=stack.store.tenants.ensure(tenant).id,
        )  # fmt: skip
    stack.store.portals.extend_cooldown(
        "echo", until=time.time() + 300, reason="429 (Retry-After 300s)", cause="429",
        actor=f"job:{jobs[0]}",
    )  # fmt: skip
    email = f"shots-{secrets.token_hex(3)}@example.test"
    stack.store.console.create_operator(
        email=email, password_hash=hash_password(PASSWORD), role="operator", tenant_id=None
    )
    paths = {"queue": "/console/escalations", "page-changed": f"/console/escalations/{esc.id}",
             "question": f"/console/escalations/{question}",
             "blocked": f"/console/escalations/{blocked}", "alert": f"/console/escalations/{alert}",
             "job": f"/console/jobs/{jobs[0]}",
             "audit": "/console/audit", "portal": "/console/portals/echo"}  # fmt: skip
    SHOTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
            try:
                for width in (1440, 390):
                    _shoot(browser, stack, email, paths, width)
            finally:
                browser.close()
    finally:
        stack.store.portals.end_cooldown("echo", reason="shots done", actor="test-cleanup")
        for job_id in jobs:
            asyncio.run(stack.service.cancel(job_id, actor="test-cleanup"))


def _shoot(browser: Any, stack: Stack, email: str, paths: dict[str, str], width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900 if width > 400 else 844})
    try:
        page = context.new_page()
        page.goto(f"{stack.url}/console/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/")
        for name, path in paths.items():
            page.goto(stack.url + path)
            found = page.evaluate(PHONE_CHECK)
            assert found["overflow"] <= 0, (name, width, found)
            if width == 390:
                assert found["navOutside"] == [], (name, found)
                assert found["cutPills"] == [], (name, found)
            if name == "audit":
                heights = page.eval_on_selector_all(
                    "table.audit tbody tr", "rs => rs.map(r => r.getBoundingClientRect().height)"
                )
                assert len(heights) == 50
                if width == 1440:
                    assert max(heights) <= 40, heights
                assert not page.locator("table.audit details[open]").count()
                page.locator("table.audit summary").first.click()
                assert page.locator("table.audit details[open] pre.json.after").count() == 1
            assert page.locator("link[rel=icon]").count() == 1  # no /favicon.ico request
            for frame in page.frames:  # the sandboxed DOM snapshots, drawn before the shot
                frame.wait_for_load_state()
            page.screenshot(path=str(SHOTS / f"operators-{name}-{width}.png"), full_page=True)
    finally:
        context.close()


def test_a_portal_breaker_opening_is_audited_as_a_cooldown_with_cause_breaker(
    db_url: str,
) -> None:
    """A portal's breaker that opens (its jobs wait like in a cooldown) writes one
    `portal.cooldown` row with cause `breaker` and its end; failures while it stays open
    write no more; a non-portal breaker writes none."""
    from portwright.resilience import BreakerPolicy
    from portwright.store import Store

    store = Store.open(db_url)
    policy = BreakerPolicy(window_s=60, min_calls=2, failure_rate=0.5, open_s=600)
    try:
        for _ in range(3):
            store.portals.record_outcome("portal:shaky", ok=False, policy=policy)
            store.portals.record_outcome("endpoint:hook", ok=False, policy=policy)
        rows = [a for a in store.audit.search(target_id="shaky") if a.action == "portal.cooldown"]
        assert len(rows) == 1
        assert rows[0].actor == "engine"
        assert rows[0].after is not None
        assert rows[0].after["cause"] == "breaker"
        assert rows[0].after["cooldown_until"] == store.portals.breaker("portal:shaky").open_until
        assert not store.audit.search(target_id="hook")
    finally:
        store.close()


def test_a_platform_operator_filters_the_queue_and_its_bulk_action_by_tenant(
    stack: Stack,
) -> None:
    """The queue's tenant filter (platform-wide operators only, by tenant name) shows one
    tenant's escalations, and the bulk form under it decides only that tenant's; a tenant's
    own operator has no filter and cannot widen or switch scope with the parameter."""
    first, second = f"qa-{secrets.token_hex(2)}", f"qb-{secrets.token_hex(2)}"
    mine, _ = stack.park(stack.key(first), 1)
    theirs, _ = stack.park(stack.key(second), 1)
    first_id = stack.store.tenants.ensure(first).id
    second_id = stack.store.tenants.ensure(second).id
    with closing(stack.operator()) as http, closing(stack.operator(tenant=second)) as scoped:
        page = http.get("/console/escalations", params={"tenant": first_id}).text
        assert f'<option value="{first_id}" selected>{first}</option>' in page
        assert mine[0] in page
        assert theirs[0] not in page
        assert 'id="tenant-filter"' not in scoped.get("/console/escalations").text
        widened = scoped.get("/console/escalations", params={"tenant": first_id}).text
        assert mine[0] not in widened  # the parameter is ignored for a tenant's operator
        assert theirs[0] in widened
        done = http.post(
            "/console/escalations/bulk",
            data={"csrf_token": http.headers["x-test-csrf"], "action": "cancel",
                  "portal": "echo", "tenant": first_id, "reason": "tenant A only"},
        )  # fmt: skip
        assert done.status_code == 303, done.text
    assert stack.settled(mine[0]) == "cancelled"
    assert stack.parked(theirs[0]) is not None  # the other tenant's is still open
    assert stack.store.jobs.get(theirs[0]).tenant_id == second_id
    asyncio.run(stack.service.cancel(theirs[0], actor="test-cleanup"))


def test_a_browsers_favicon_requests_do_not_spend_the_failed_login_budget(stack: Stack) -> None:
    """Browsers ask every origin for /favicon.ico without an API key; those requests are not
    failed API logins, so an operator browsing the console never gets their address's API
    calls refused with 429 too_many_auth_failures (the budget is 20 a minute)."""
    key = stack.key(f"icon-{secrets.token_hex(2)}")
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        for _ in range(25):
            assert http.get("/favicon.ico").status_code == 404
    with stack.api(key) as api:
        assert api.get("/v1/me").status_code == 200
