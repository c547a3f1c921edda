"""Helpers shared by tests that run real worker subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portwright.sandbox import SandboxWorld
from portwright.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """A worker subprocess; `kill()` is SIGKILL, with no chance to clean up."""

    def __init__(self, settings: Settings, world: SandboxWorld, worker_id: str, log: Path) -> None:
        self.env = {
            **os.environ,
            "PORTWRIGHT_DATABASE_URL": settings.app_database_url,
            "PORTWRIGHT_DATA_DIR": str(settings.data_dir),
            "PORTWRIGHT_WORKER_ID": worker_id,
            "PORTWRIGHT_HEARTBEAT_INTERVAL_S": "0.3",
            "PORTWRIGHT_DEAD_WORKER_AFTER_S": "2",
            "PORTWRIGHT_QUEUE_POLLING_INTERVAL_S": "0.05",
            "PORTWRIGHT_CAPTCHA_SOLVER_URL": world.url("captcha-solver"),
            "PORTWRIGHT_CAPTCHA_API_KEY": "sandbox-key",
            "PORTWRIGHT_LOG_LEVEL": "WARNING",
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.orchestrator.crash_worker"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
