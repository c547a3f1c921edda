"""Acceptance through the real `portwright` command, in subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from portwright.orchestrator import JobService
from portwright.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def portwright(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwright.cli", *args],
        cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_books_fifty_under_chaos_with_no_job_lost_or_booked_twice(
    db_url: str, tmp_path: Path
) -> None:
    """`demo --once` runs 50 bookings for two tenants under chaos and a DOM switch; every job
    settles, none is booked twice, every job replays; `jobs` reads the result back. On SQLite
    the directory scenario follows on the same stack (each other scenario module has its own
    test against a real stack; all of them at once would cost minutes per database). The
    acceptance size, 50, runs on SQLite; the PostgreSQL copy checks the same things on 20
    bookings (the demo's default), which is enough to cross the DOM switch and the operator's
    patch, to keep the suite's time in budget."""
    data = tmp_path / "pw"
    sqlite = db_url.startswith("sqlite")
    scenarios = "bookings,directories" if sqlite else "bookings"
    size = 50 if sqlite else 20
    run = portwright("demo", "--once", "--bookings", str(size), "--data-dir", str(data),
                     "--database-url", db_url, "--scenarios", scenarios, timeout=800)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "RESULT: PROBLEM" not in out
    assert "RESULT: ok" in out
    if "directories" in scenarios:
        assert "scenario directories" in out
        assert re.search(r"50/50 directories accounted for", out), out[-2000:]
        assert re.search(r"directory ledgers: \d+ listings, 0 listed twice", out)
    assert re.search(r"portal ledger: \d+ bookings, 0 booked twice", out)
    assert f"{size}/{size} jobs replay to their stored state" in out
    assert "lost jobs: 0" in out
    assert "acme" in out
    assert "globex" in out
    assert "the portal switched to DOM v2" in out
    assert "operator patched the selectors" in out
    confirmed = sum(int(n) for n in re.findall(r"(\d+) CONFIRMED", out.split("summary")[1]))
    assert confirmed >= size * 9 // 10, out[-2000:]  # 45 of 50
    where = ["--data-dir", str(data / "demo"), "--database-url", db_url]
    listing = portwright("jobs", "list", "--json", "--limit", "500", *where)
    assert listing.returncode == 0, listing.stderr
    bookings = [line for line in listing.stdout.splitlines() if '"adapter": "consulate"' in line]
    first = re.search(r'"id": "(job_[0-9a-f]+)"', bookings[0])
    assert first is not None
    assert len(bookings) == size
    events = portwright("jobs", "events", first.group(1), *where)
    assert "replays to the stored state" in events.stdout, events.stdout


def test_demo_refuses_an_unknown_scenario_naming_the_known_ones(tmp_path: Path) -> None:
    run = portwright("demo", "--once", "--scenarios", "bookings,teleport", "--data-dir",
                     str(tmp_path))  # fmt: skip
    assert run.returncode == 2
    assert "--scenarios: unknown scenario teleport" in run.stderr
    assert "known: bookings, scrape, directories, jobboard" in run.stderr


def test_sandbox_command_prints_every_service_and_the_admin_endpoint() -> None:
    """`portwright sandbox` prints `NAME URL` per service, then the admin endpoint, all live."""
    with subprocess.Popen(
        [sys.executable, "-m", "portwright.cli", "sandbox", "--seed", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        stdin=subprocess.DEVNULL,
    ) as proc:  # fmt: skip
        try:
            lines = _read_services(proc)
            expected = {"consulate", "inbox", "captcha-solver", "scrape-static", "jobboard",
                        "directories", "shop-alpha", "proxy-dc-1", "admin"}  # fmt: skip
            assert expected <= set(lines)
            services = httpx.get(f"{lines['admin']}/services").json()
            assert services["seed"] == 3
            assert {s["name"] for s in services["services"]} == set(lines) - {"admin"}
            assert httpx.get(f"{lines['consulate']}/login").status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _read_services(proc: subprocess.Popen[str]) -> dict[str, str]:
    assert proc.stdout is not None
    lines: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while "admin" not in lines and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        name, url = line.split()
        lines[name] = url
    return lines


def test_migrate_prepares_an_empty_database(db_url: str, tmp_path: Path) -> None:
    """`portwright migrate` creates every schema on an empty database, and again is a no-op."""
    for _ in range(2):
        run = portwright("migrate", "--data-dir", str(tmp_path), "--database-url", db_url)
        assert run.returncode == 0, run.stderr
        assert "app database at revision" in run.stdout


@pytest.mark.browser
@pytest.mark.timeout(600)
async def test_a_scaled_out_worker_runs_browser_scrapes_on_its_fleet(
    settings: Settings, service_for: Callable[..., JobService]
) -> None:
    """`portwright worker` runs what `up` runs (`start_runtime`): the scrape adapter on the
    fleet, so a browser-engine scrape submitted elsewhere succeeds there on the browser tier.
    With `--metrics-port` it serves its own /metrics, where its browser pool shows."""
    from portwright.cli._stack import platform_registry
    from portwright.sandbox import SandboxWorld, scrape
    from portwright.testing import wait_until

    with SandboxWorld(scrape.specs(), seed=5) as world:
        ports = sorted({url.rsplit(":", 1)[1] for url in world.urls().values()})
        allow = [f"127.0.0.1:{port}" for port in ports]
        key = "cli-test-master-key-" + "y" * 32
        mine = settings.model_copy(update={"url_allowlist": allow, "master_key": SecretStr(key)})
        svc = service_for(platform_registry(mine, browsers=True), settings=mine, run_workers=False)
        tenant = svc.store.tenants.ensure("acme")
        url = f"{world.url('scrape-js')}/product/3"
        rules = {"title": {"selector": "h1.title"}}
        job = await svc.submit(
            tenant_id=tenant.id, adapter="scrape",
            input={"url": url, "engine": "browser", "extract": rules},
        )  # fmt: skip
        env = {
            "PORTWRIGHT_DATA_DIR": str(mine.data_dir),
            "PORTWRIGHT_DATABASE_URL": str(mine.database_url),
            "PORTWRIGHT_URL_ALLOWLIST": json.dumps(allow),
            "PORTWRIGHT_MASTER_KEY": key,
            "PORTWRIGHT_LOG_JSON": "false",
        }
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            metrics_port = probe.getsockname()[1]
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for off the loop below
            [sys.executable, "-m", "portwright.cli", "worker", "--worker-id", "cli-w1",
             "--metrics-port", str(metrics_port)],
            cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:

            async def ended() -> Any:
                current = await svc.get(job.id)
                return current if current.status in ("succeeded", "failed") else None

            done = await wait_until(ended, timeout=240, every=0.5)
            page = await asyncio.to_thread(
                httpx.get, f"http://127.0.0.1:{metrics_port}/metrics", timeout=10
            )
            pool = {
                sample.name: sample.value
                for family in text_string_to_metric_families(page.text)
                for sample in family.samples
            }.get("portwright_browser_pool_size")
        finally:
            proc.terminate()
            _, err = await asyncio.to_thread(proc.communicate, timeout=60)
        assert done.status == "succeeded", (done.reason, err[-2000:])
        assert done.output["tier"] == "browser"
        assert done.output["extracted"]["title"]
        assert proc.returncode == 0, err[-2000:]
        assert pool is not None
        assert pool >= 1, page.text  # the browser that served the scrape, in the worker


def test_operators_create_without_a_terminal_names_password_stdin(
    db_url: str, tmp_path: Path
) -> None:
    """With no terminal and no password, `operators create` exits 2 with a message naming
    `--password-stdin` (it used to die with EOFError); with the flag it creates the login."""
    env = {k: v for k, v in os.environ.items() if k != "PORTWRIGHT_OPERATOR_PASSWORD"}
    argv = [
        sys.executable, "-m", "portwright.cli", "operators", "create", "--data-dir",
        str(tmp_path), "--database-url", db_url, "--email", "ann@example.test", "--role", "admin",
    ]  # fmt: skip
    no_tty = subprocess.run(
        argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert no_tty.returncode == 2, no_tty.stderr
    assert "EOFError" not in no_tty.stderr
    assert "--password-stdin" in no_tty.stderr
    listed = portwright("operators", "list", "--data-dir", str(tmp_path), "--database-url", db_url)
    assert "ann@example.test" not in listed.stdout

    empty = subprocess.run(
        [*argv, "--password-stdin"], cwd=ROOT, env=env, input="\n", capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert empty.returncode == 2, empty.stderr
    assert "no password" in empty.stderr

    piped = subprocess.run(
        [*argv, "--password-stdin"], cwd=ROOT, env=env, input="correct horse battery\n",
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    listed = portwright("operators", "list", "--data-dir", str(tmp_path), "--database-url", db_url)
    assert listed.returncode == 0, listed.stderr
    assert "ann@example.test\tadmin" in listed.stdout
