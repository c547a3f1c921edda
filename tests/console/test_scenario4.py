"""Scenario 4 in the console: a job-board run waits for an operator across a restart, and an
operator watches the live browser and types into it.

The platform (gateway, console, workers and a Chromium fleet, as `portwright up` runs
them) lives in a subprocess of this test (`python -m tests.console.test_scenario4`),
so it can be SIGKILLed and started again; the sandbox job board, the database and the
operator's Chromium stay here.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page

from portwright.console import hash_password
from portwright.gateway import issue_key
from portwright.sandbox import SandboxWorld, captcha, jobboard
from portwright.store import Store
from tests.console._support import PASSWORD, csrf_in
from tests.support import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path(__file__).parent / "screenshots"
T = TypeVar("T")
TYPED = "Typed by the operator"


def wait_for(check: Callable[[], T | None], timeout: float = 120.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}")


def applicant(email: str, **over: Any) -> dict[str, Any]:
    return {
        "name": "Grace Hopper",
        "email": email,
        "phone": "+44 20 7946 0001",
        "location": "Leeds",
        "resume": {"filename": "grace.pdf",
                   "content_b64": base64.b64encode(b"%PDF-1.4 grace").decode()},
        "years_experience": 12,
        "work_authorised": True,
        "answers": {"Describe a time you disagreed with a manager":
                    "We disagreed on a deadline; I showed the risks and we moved it by a week."},
    } | over  # fmt: skip


@dataclass
class Platform:
    """The platform subprocess (restartable) and what the test needs to talk to it."""

    env: dict[str, str]
    url: str
    log: Path
    store: Store
    api_key: str
    world: SandboxWorld
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.console.test_scenario4"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"platform exited: {self.log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/console/login", timeout=30).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 90, "the platform to serve")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def submit(self, data: dict[str, Any]) -> str:
        response = httpx.post(
            f"{self.url}/v1/jobs", json={"adapter": "jobboard", "input": data},
            headers={"authorization": f"Bearer {self.api_key}"}, timeout=30,
        )  # fmt: skip
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def job(self, job_id: str) -> Any:
        return self.store.jobs.get(job_id)

    def finished(self, job_id: str) -> Any:
        return wait_for(
            lambda: (j := self.job(job_id)).status in ("succeeded", "failed") and j,
            150, f"job {job_id} to finish",
        )  # fmt: skip


def _port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("scenario4")
    specs = [*jobboard.specs(), *captcha.specs({"solve_time_s": 0.05})]
    with SandboxWorld(specs, seed=44) as world:
        world.chaos("jobboard").update({"captcha_rate": 0.0})
        db_url = f"sqlite:///{tmp / 'app.sqlite'}"
        port = _port()
        env = {
            **os.environ,
            "PORTWRIGHT_DATABASE_URL": db_url,
            "PORTWRIGHT_DATA_DIR": str(tmp / "data"),
            "PORTWRIGHT_WORKER_ID": "scenario4-worker",
            "PORTWRIGHT_HEARTBEAT_INTERVAL_S": "0.5",
            "PORTWRIGHT_DEAD_WORKER_AFTER_S": "30",
            "PORTWRIGHT_QUEUE_POLLING_INTERVAL_S": "0.1",
            "PORTWRIGHT_CAPTCHA_SOLVER_URL": world.url("captcha-solver"),
            "PORTWRIGHT_CAPTCHA_API_KEY": "sandbox-key",
            "PORTWRIGHT_MASTER_KEY": "scenario4-master-key-" + "x" * 32,
            "PORTWRIGHT_LOG_LEVEL": "WARNING",
            "PORTWRIGHT_URL_ALLOWLIST": json.dumps(
                [url.removeprefix("http://") for url in world.urls().values()]
            ),  # the jobs reach the sandbox, as under `portwright up`
            "SCENARIO4_PORT": str(port),
        }
        store = Store.open(db_url)
        key = issue_key(store, tenant="acme", name="scenario4", scopes="jobs").key
        platform = Platform(env, f"http://127.0.0.1:{port}", tmp / "platform.log", store, key,
                            world)  # fmt: skip
        platform.start()
        try:
            yield platform
        finally:
            platform.stop()
            store.close()


def operator(platform: Platform) -> str:
    email = f"op-{secrets.token_hex(3)}@example.test"
    platform.store.console.create_operator(
        email=email, password_hash=hash_password(PASSWORD), role="operator", tenant_id=None
    )
    return email


def sign_in(browser: Browser, platform: Platform, email: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(f"{platform.url}/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/**")
    return page


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"scenario4-{name}.png"), full_page=True)


def test_a_paused_run_survives_a_worker_restart_and_submits_after_the_operator_answers(
    platform: Platform, browser: Browser
) -> None:
    """The run parks at the screening question it cannot answer, the worker is SIGKILLed and
    started again, an operator answers in the console, and the run submits exactly once."""
    job_id = platform.submit(
        {"board_url": platform.world.url("jobboard"), "job_id": 5,
         "applicant": applicant("grace@example.com")}
    )  # fmt: skip

    def parked() -> Any:
        open_ = [e for e in platform.store.jobs.escalations(job_id=job_id)
                 if e.status != "resolved"]  # fmt: skip
        return open_[0] if open_ else None

    escalation = wait_for(parked, 150, "the unsure-field escalation")
    assert escalation.kind == "unsure_field"
    assert escalation.details["field"] == "working_style"

    platform.kill()  # the worker dies while the run waits for a person
    platform.start()
    assert platform.job(job_id).state == "OPERATOR_ACTION_REQUIRED"

    page = sign_in(browser, platform, operator(platform))
    try:
        page.goto(f"{platform.url}/console/escalations")
        row = page.locator(f"td.reason a[href$='/escalations/{escalation.id}']")
        row.wait_for()
        shot(page, "escalations")
        row.click()
        page.wait_for_url(f"**/escalations/{escalation.id}")
        assert page.is_visible("#live-browser-link")
        assert "working_style" in page.inner_text("main")
        shot(page, "escalation")
        # the known answers are offered as choices, not free text
        page.check("input[name=value][value=structured]")
        page.click("#resolve")
        page.wait_for_load_state()
        record = platform.finished(job_id)
        assert record.state == "SUCCEEDED", record.reason
        page.goto(f"{platform.url}/console/jobs/{job_id}")
        shot(page, "job-submitted")
    finally:
        page.close()
    (entry,) = platform.world.ledger("jobboard").entries("application")
    assert entry.key == "5|grace@example.com"
    assert entry.data["answers"]["working_style"] == "structured"
    assert record.output["application_id"] == entry.data["application_id"]


def test_the_operator_watches_the_live_browser_takes_over_and_types_into_the_page(
    platform: Platform, browser: Browser
) -> None:
    """A frame of the job's page reaches the console; while the operator holds control the
    job waits, a click and typed keys land in the job's page, and after hand-back the job
    submits what the operator typed."""
    email = operator(platform)
    http = httpx.Client(base_url=platform.url, timeout=30)
    form = http.get("/console/login")
    http.post("/console/login", data={"email": email, "password": PASSWORD,
                                      "csrf_token": csrf_in(form.text)})  # fmt: skip
    token = csrf_in(http.get("/console/").text)
    # Hold the portal so the operator can take over before the job's first page is filled.
    assert http.post("/console/portals/jobboard/pause",
                     data={"csrf_token": token}).status_code == 303  # fmt: skip
    answers = applicant("")["answers"] | {"how you like to work": "independent"}
    job_id = platform.submit(
        {"board_url": platform.world.url("jobboard"), "job_id": 6,
         "applicant": applicant("live@example.com", answers=answers)}
    )  # fmt: skip
    taken = http.post(f"/console/jobs/{job_id}/live/take", data={"csrf_token": token})
    assert taken.status_code == 303, taken.text
    assert http.post("/console/portals/jobboard/resume",
                     data={"csrf_token": token}).status_code == 303  # fmt: skip

    page = sign_in(browser, platform, email)
    try:
        page.goto(f"{platform.url}/console/jobs/{job_id}/live")
        page.wait_for_function(
            "Number(document.getElementById('screen').dataset.frames) > 0", timeout=120_000
        )
        assert page.get_attribute("#browser-live", "data-control") == "operator"
        shot(page, "live-taken-over")
        width = int(page.get_attribute("#screen", "data-device-width") or 0)
        height = int(page.get_attribute("#screen", "data-device-height") or 0)
        assert width > 0
        assert height > 0
        target = _field_centre(browser, platform, width, height, "#location")
        box = page.locator("#screen").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + target[0] * box["width"] / width,
                         box["y"] + target[1] * box["height"] / height)  # fmt: skip
        page.keyboard.type(TYPED, delay=20)
        page.wait_for_function(  # every key sent reached the job's page
            "(r => Number(r.dataset.applied) === Number(r.dataset.sent))"
            "(document.getElementById('browser-live'))",
            timeout=60_000,
        )
        page.wait_for_timeout(1500)  # a fresh frame shows the typed text
        shot(page, "live-typed")
        assert platform.job(job_id).status not in ("succeeded", "failed")  # it waited
        page.click("#hand-back")
        page.wait_for_load_state()
        record = platform.finished(job_id)
        assert record.state == "SUCCEEDED", record.reason
        page.wait_for_selector("#browser-live[data-state=ended]")  # the view notices the end
        shot(page, "live-after-hand-back")
    finally:
        page.close()
        http.close()
    entries = [e for e in platform.world.ledger("jobboard").entries("application")
               if e.key == "6|live@example.com"]  # fmt: skip
    assert len(entries) == 1
    assert entries[0].data["profile"]["location"] == TYPED
    assert entries[0].data["profile"]["name"] == "Grace Hopper"
    actions = [a.action for a in platform.store.audit.search(target_id=job_id)]
    assert "live.take" in actions
    assert "live.release" in actions


def _field_centre(
    browser: Browser, platform: Platform, width: int, height: int, selector: str
) -> tuple[float, float]:
    """Where `selector` sits on the board's profile page at the job page's viewport size."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        probe = context.new_page()
        probe.goto(f"{platform.world.url('jobboard')}/jobs/1/apply")
        box = probe.locator(selector).bounding_box()
        assert box is not None
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    finally:
        context.close()


def main() -> int:
    """The platform process: runtime with a Chromium fleet, gateway and console."""
    import uvicorn

    from portwright.adapters import AdapterRegistry
    from portwright.apps.jobboard import JobBoardAdapter
    from portwright.engines import Fleet, FleetConfig
    from portwright.engines.browser import BrowserPool, LocalChromium, PoolConfig
    from portwright.gateway import create_app
    from portwright.observability import configure_logging
    from portwright.orchestrator import JobService, Runtime
    from portwright.settings import Settings

    settings = Settings()
    configure_logging(settings)
    fleet = Fleet.from_settings(settings, config=FleetConfig(trace=False))
    fleet.browsers = BrowserPool(
        LocalChromium(remote_debugging=True), PoolConfig(max_browsers=1, idle_close_s=60)
    )
    registry = AdapterRegistry()
    registry.register(JobBoardAdapter)
    runtime = Runtime(settings, registry, fleet=fleet).start()
    try:
        app = create_app(JobService(runtime), settings)
        uvicorn.run(app, host="127.0.0.1", port=int(os.environ["SCENARIO4_PORT"]),
                    log_level="warning", access_log=False)  # fmt: skip
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
