"""A real scale-out stack for the deploy checks: `portwright migrate`, one `portwright api`
and one `portwright worker --metrics-port` as subprocesses on a fresh PostgreSQL database
(the deploy artefacts' database), so the rules and manifests are compared with what the
processes actually serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from portwright.testing import wait_until_sync
from tests.conftest import SKIP_PG, pg_database

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Stack:
    gateway: str  # http://127.0.0.1:PORT of `portwright api`
    worker_metrics: str  # http://127.0.0.1:PORT/metrics of `portwright worker`
    env: dict[str, str]
    logs: Path


def _tail(logs: Path) -> str:
    return "\n".join(
        f"{p.name}: {p.read_text(errors='replace')[-2000:]}" for p in sorted(logs.glob("*.log"))
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if SKIP_PG:
        pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
    data = tmp_path_factory.mktemp("deploy-stack")
    logs = data / "logs"
    logs.mkdir()
    with contextmanager(pg_database)("pw_deploy") as db_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
        env.update(
            PORTWRIGHT_DATABASE_URL=db_url,
            PORTWRIGHT_DATA_DIR=str(data / "data"),
            PORTWRIGHT_MASTER_KEY="deploy-test-master-key-" + "k" * 32,
            PORTWRIGHT_CHROMIUM="none",
            PORTWRIGHT_HEARTBEAT_INTERVAL_S="0.5",
        )
        migrated = subprocess.run(
            [sys.executable, "-m", "portwright.cli", "migrate"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        api_port, metrics_port = free_port(), free_port()
        commands = {
            "api": ["api", "--port", str(api_port)],
            "worker": ["worker", "--worker-id", "deploy-w1", "--metrics-port", str(metrics_port)],
        }
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for name, args in commands.items():
                with (logs / f"{name}.log").open("wb") as out:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "portwright.cli", *args],
                            cwd=ROOT,
                            env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                        )
                    )
            gateway = f"http://127.0.0.1:{api_port}"

            def ready() -> bool:
                for proc in procs:
                    if proc.poll() is not None:
                        pytest.fail(f"a process exited {proc.returncode}:\n{_tail(logs)}")
                try:
                    return httpx.get(f"{gateway}/readyz", timeout=5).status_code == 200
                except httpx.TransportError:
                    return False

            try:
                wait_until_sync(ready, timeout=120, every=0.3)
            except AssertionError:
                pytest.fail(f"the stack was not ready within 120 s:\n{_tail(logs)}")
            yield Stack(gateway, f"http://127.0.0.1:{metrics_port}/metrics", env, logs)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
