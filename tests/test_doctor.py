"""`portwright doctor` through the real CLI, on a healthy setup and on a broken one: real
databases (SQLite and PostgreSQL), Redis, NATS, Chromium, sandbox proxies and both captcha
API styles; broken means a wrong port, a Chromium path that is not there, a proxy that is
down and a refused solver key."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwright.sandbox import SandboxWorld, captcha, proxies
from portwright.settings import Settings
from portwright.store import Store, create_engine, head_revisions, migrate

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
REDIS = os.environ.get("PORTWRIGHT_TEST_REDIS", "redis://127.0.0.1:6379/0")
NATS = os.environ.get("PORTWRIGHT_TEST_NATS", "nats://127.0.0.1:4222")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    specs = [
        *captcha.specs({"solve_time_s": 0.0}),
        *captcha.task_specs({"solve_time_s": 0.0}),
        proxies.proxy_spec("egress-1", "datacenter", "DE", username="px", password="px-pass"),
    ]
    with SandboxWorld(specs, seed=31) as started:
        yield started


def _doctor(config: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "portwright.toml"
    path.write_text(config)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
    environ |= {"PORTWRIGHT_CONFIG": str(path), "PORTWRIGHT_LOG_LEVEL": "WARNING", **env}
    return subprocess.run(
        [sys.executable, "-m", "portwright.cli", "doctor", "--timeout", "3"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _resources(world: SandboxWorld, *, proxy: str, key: str, proxy_pass: str = "px-pass") -> str:
    return f"""
[[proxies.lists]]
name = "office"
username = "px"
password = "{proxy_pass}"
proxies = ["{proxy}", "{world.url("egress-1")}"]

[[captcha.providers]]
name = "legacy"
style = "2captcha"
url = "{world.url("captcha-solver")}"
api_key = "{key}"

[[captcha.providers]]
name = "tasks"
style = "createtask"
url = "{world.url("captcha-tasks")}"
api_key = "env:TEST_TASKS_KEY"
"""


def _lines(out: str) -> dict[str, str]:
    """check name → its status word, from the doctor's table."""
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "missing", "BROKEN"):
            found[rest.strip().split("  ")[0]] = status
    return found


def test_a_healthy_setup_passes(world: SandboxWorld, db_url: str, tmp_path: Path) -> None:
    """Everything configured is there: every check says ok and the exit status is 0."""
    url = Settings(database_url=db_url).app_database_url
    Store.open(url).close()  # migrated, as after a first start
    config = f"""
database_url = "{db_url}"
data_dir = "{tmp_path / "data"}"
redis_url = "{REDIS}"
nats_url = "{NATS}"
chromium_path = "/usr/bin/chromium"
""" + _resources(world, proxy=world.url("egress-1"), key="sandbox-key")
    result = _doctor(config, tmp_path, TEST_TASKS_KEY="sandbox-key")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = _lines(result.stdout)
    for name in ("database", "migrations", "chromium", "redis", "nats", "proxy office-1",
                 "proxy office-2", "captcha legacy", "captcha tasks"):  # fmt: skip
        assert lines.get(name) == "ok", f"{name}: {result.stdout}"
    assert "0 broken" in result.stdout


def test_a_broken_setup_names_each_problem_and_its_fix(world: SandboxWorld, tmp_path: Path) -> None:
    """A database on a wrong port, a Chromium path that is not there, Redis on a wrong
    port, a proxy that is down, a proxy refusing the credentials and a refused solver key:
    each is BROKEN with a fix, the working solver is still ok, no secret is printed, and the
    exit status is 1."""
    down = _closed_port()
    config = f"""
database_url = "postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere"
data_dir = "{tmp_path / "data"}"
redis_url = "redis://127.0.0.1:{_closed_port()}/0"
chromium_path = "{tmp_path / "no-chromium"}"
""" + _resources(
        world, proxy=f"http://127.0.0.1:{down}", key="wrong-secret-key", proxy_pass="not-it"
    )
    result = _doctor(config, tmp_path, TEST_TASKS_KEY="sandbox-key")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = _lines(result.stdout)
    for name in ("database", "chromium", "redis", "proxy office-1", "proxy office-2",
                 "captcha legacy"):  # fmt: skip
        assert lines.get(name) == "BROKEN", f"{name}: {result.stdout}"
    assert lines.get("captcha tasks") == "ok"
    assert result.stdout.count("fix: ") == 6
    assert "refused the credentials (407)" in result.stdout
    assert "ERROR_WRONG_USER_KEY" in result.stdout
    assert "wrong-secret-key" not in result.stdout + result.stderr
    assert "not-it" not in result.stdout + result.stderr


def test_invalid_settings_exit_2_naming_the_setting(tmp_path: Path) -> None:
    """A bad value stops the doctor before any check, naming the setting and the problem."""
    config = """
[[browsers.providers]]
name = "remote"
kind = "cdp"
url = "ftp://127.0.0.1:9222"
"""
    result = _doctor(config, tmp_path)
    assert result.returncode == 2
    assert "browsers.providers.0: Value error, " not in result.stderr
    assert "browsers.providers.0" in result.stderr
    assert "cdp url must start with ws:// or wss:// or http:// or https://" in result.stderr


def test_json_output_is_one_object_per_check(world: SandboxWorld, tmp_path: Path) -> None:
    """--json prints machine-readable findings with the same statuses."""
    config = f'data_dir = "{tmp_path / "data"}"\nchromium_path = "/usr/bin/chromium"\n'
    path = tmp_path / "portwright.toml"
    path.write_text(config)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
    result = subprocess.run(
        [sys.executable, "-m", "portwright.cli", "doctor", "--json"],
        cwd=tmp_path, env={**environ, "PORTWRIGHT_CONFIG": str(path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["name"] for r in rows} >= {"database", "system database", "chromium"}
    assert all(r["status"] == "ok" for r in rows)


def test_a_database_behind_an_app_branch_is_missing_that_head(db_url: str, tmp_path: Path) -> None:
    """A database migrated by the core's chain only (the dispatch app's branch not yet
    applied) has its migrations MISSING, naming the app's head and `portwright migrate`;
    after `migrate` they are ok at both heads."""
    url = Settings(database_url=db_url).app_database_url
    engine = create_engine(url)
    try:
        core_head = sorted(head_revisions() - {"dispatch_0002"})[0]
        migrate(engine, core_head)
        config = f'database_url = "{db_url}"\ndata_dir = "{tmp_path / "data"}"\n'
        lines_before = _doctor(config, tmp_path).stdout
        assert _lines(lines_before).get("migrations") == "missing", lines_before
        assert "not yet applied: dispatch_0002" in lines_before
        assert "run `portwright migrate`" in lines_before
        migrate(engine)
        after = _doctor(config, tmp_path).stdout
        assert _lines(after).get("migrations") == "ok", after
        assert f"at head ({core_head}, dispatch_0002)" in after
    finally:
        engine.dispose()
