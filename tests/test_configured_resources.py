"""Real resources by configuration alone: a `portwright.toml` names a proxy list, two captcha
providers of different API styles (the first down) and a remote CDP browser; the runtime the
CLI starts (`start_runtime`) books through the proxy, solves the login captcha through the
second provider and scrapes on the remote browser. SQLite and PostgreSQL.

The "remote" browser is a Chromium started here with `--remote-debugging-port` on loopback;
local Chromium is switched off (`PORTWRIGHT_CHROMIUM=none`), so a browser page can only come
from the configured CDP endpoint.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from portwright.cli._stack import start_runtime
from portwright.engines._chromium import find_chromium
from portwright.orchestrator import JobService
from portwright.sandbox import ChaosKnobs, SandboxWorld, captcha, consulate, inbox, proxies, scrape
from portwright.settings import load_settings
from portwright.testing import wait_until, wait_until_sync

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

SETTLED = ("succeeded", "failed", "cancelled")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    options = {"release_every_s": 2.0, "initial_slots": 8, "payment_delay_s": 0.2}
    specs = [
        *inbox.specs(),
        *captcha.task_specs({"solve_time_s": 0.05}),
        *consulate.specs(options, ChaosKnobs(captcha_rate=1.0)),  # every sign-in: a captcha
        *scrape.specs(),
        proxies.proxy_spec("egress-1", "datacenter", "DE", username="pw-user", password="pw-pass"),
    ]
    with SandboxWorld(specs, seed=23) as started:
        yield started


@pytest.fixture(scope="module")
def remote_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Chromium listening for CDP on a loopback port: the remote browser provider."""
    port = _free_port()
    profile = tmp_path_factory.mktemp("remote-chromium")
    proc = subprocess.Popen(
        [find_chromium(None), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/json/version", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until_sync(up, timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _config(world: SandboxWorld, remote: str, dead: int) -> str:
    proxy = world.url("egress-1").removeprefix("http://")
    allow = [u.removeprefix("http://") for u in world.urls().values()] + [f"127.0.0.1:{dead}"]
    return f"""
url_allowlist = {json.dumps(allow)}

[[proxies.lists]]
name = "office"
tier = "datacenter"
country = "DE"
username = "pw-user"
password = "env:TEST_PROXY_PASSWORD"
proxies = ["http://{proxy}"]

[[captcha.providers]]
name = "first"
style = "2captcha"
url = "http://127.0.0.1:{dead}"
api_key = "whatever"
poll_s = 0.05

[[captcha.providers]]
name = "second"
style = "createtask"
url = "{world.url("captcha-tasks")}"
api_key = "env:TEST_SOLVER_KEY"
poll_s = 0.05

[[browsers.providers]]
name = "remote"
kind = "cdp"
url = "{remote}"
concurrency = 2

[identities]
default = "direct"
adapters = {{ consulate = "eu" }}

[identities.pools.eu]
tier = "datacenter"
country = "DE"
"""


def _off_loop(fn: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


async def test_a_booking_a_captcha_and_a_scrape_on_configured_resources(
    world: SandboxWorld,
    remote_browser: str,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Configured by file alone: the booking's requests go through the listed proxy (the
    proxy's own ledger saw them), the login captcha is solved by the second provider after
    the first (down) failed, and a browser scrape renders on the remote CDP browser."""
    dead = _free_port()  # nothing listens here: the first captcha provider is down
    config = tmp_path / "portwright.toml"
    config.write_text(_config(world, remote_browser, dead))
    monkeypatch.setenv("PORTWRIGHT_CONFIG", str(config))
    monkeypatch.setenv("TEST_PROXY_PASSWORD", "pw-pass")
    monkeypatch.setenv("TEST_SOLVER_KEY", "sandbox-key")
    monkeypatch.setenv("PORTWRIGHT_CHROMIUM", "none")  # no local browser on this "worker"
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        worker_id="configured",
        queue_polling_interval_s=0.05,
        log_json=False,
    )
    runtime, vault = _off_loop(lambda: start_runtime(settings, browser_notice=False))
    try:
        service = JobService(runtime)
        tenant = runtime.store.tenants.ensure("acme")
        vault.put(tenant.id, "user1@example.test", "pw-1")  # the account's password
        seen_before = len(world.ledger("egress-1").entries("request"))  # the world is shared
        solved_before = len(world.ledger("captcha-tasks").entries("solve"))
        booking = await service.submit(
            tenant_id=tenant.id,
            adapter="consulate",
            input={
                "portal_url": world.url("consulate"), "inbox_url": world.url("inbox"),
                "account_email": "user1@example.test", "center": "LON", "visa_type": "tourist",
                "otp_source": "inbox", "scan_interval_s": 0.5, "deadline_s": 120.0,
                "payment_wait_s": 1.0,
            },
        )  # fmt: skip
        scrape_job = await service.submit(
            tenant_id=tenant.id,
            adapter="scrape",
            input={"url": f"{world.url('scrape-js')}/product/5", "engine": "browser"},
        )

        def settled(job_id: str) -> Any:
            job = runtime.store.jobs.get(job_id)
            return job if job.status in SETTLED else None

        booked = await wait_until(lambda: settled(booking.id), timeout=150)
        scraped = await wait_until(lambda: settled(scrape_job.id), timeout=120)

        assert booked.state == "CONFIRMED", booked.reason
        consulate_port = world.url("consulate").rsplit(":", 1)[1]
        through_proxy = [
            e for e in world.ledger("egress-1").entries("request")[seen_before:]
            if e.key.endswith(f":{consulate_port}")
        ]  # fmt: skip
        assert through_proxy, "the booking's requests did not go through the configured proxy"
        assert world.ledger("consulate").count("booking", booking.id) == 1

        attempts = [(a.provider, a.ok) for a in runtime.captcha.history]
        assert ("first", False) in attempts
        assert ("second", True) in attempts
        assert attempts.index(("first", False)) < attempts.index(("second", True))
        solved = world.ledger("captcha-tasks").entries("solve")[solved_before:]
        assert solved
        assert all(e.data["outcome"] == "solved" for e in solved)

        assert scraped.status == "succeeded", scraped.reason
        output = scraped.output or {}
        assert output.get("tier") == "browser", output
        pool = runtime.fleet.browsers
        assert pool is not None
        assert pool.provider.name == "remote"
        assert pool.stats().launched >= 1
    finally:
        _off_loop(runtime.stop)
        vault.close()
