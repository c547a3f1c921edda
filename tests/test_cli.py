"""Acceptance through the real `portwright` command, in subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

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
    settles, none is booked twice, every job replays; `jobs` reads the result back."""
    data = tmp_path / "pw"
    run = portwright("demo", "--once", "--bookings", "50", "--data-dir", str(data),
                     "--database-url", db_url, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "RESULT: ok" in out
    assert re.search(r"portal ledger: \d+ bookings, 0 booked twice", out)
    assert "50/50 jobs replay to their stored state" in out
    assert "lost jobs: 0" in out
    assert "acme" in out
    assert "globex" in out
    assert "the portal switched to DOM v2" in out
    assert "operator patched the selectors" in out
    confirmed = sum(int(n) for n in re.findall(r"(\d+) CONFIRMED", out.split("summary")[1]))
    assert confirmed >= 45, out[-2000:]
    where = ["--data-dir", str(data / "demo"), "--database-url", db_url]
    listing = portwright("jobs", "list", "--json", "--limit", "100", *where)
    assert listing.returncode == 0, listing.stderr
    first = re.search(r'"id": "(job_[0-9a-f]+)"', listing.stdout)
    assert first is not None
    assert len(listing.stdout.strip().splitlines()) == 50
    events = portwright("jobs", "events", first.group(1), *where)
    assert "replays to the stored state" in events.stdout, events.stdout


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
