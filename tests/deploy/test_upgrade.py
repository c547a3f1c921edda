"""An upgrade across two releases on PostgreSQL, as docs/operations.md describes it: the
previous release's migrations and worker, a job started there, the new release's migrations
applied while that worker still runs it and then while it stops, and the new release's worker
finishing the job — once.

The previous release is `PREVIOUS_RELEASE`, a commit of main whose migration chain ends
before this checkout's (at `0013_rollouts`: `0014_accounts` is new since), taken from git
history (`git archive`) and run from the same virtualenv with `PYTHONPATH` pointing at its
`src`. Without that history (a shallow clone) the test fails saying so: CI runs it in a full
clone (`fetch-depth: 0`).

That release has no draining shutdown yet: on SIGTERM its worker stops at once and marks
itself stopped. The job it was running — between two checkpointed steps, in a durable sleep
— resumes on the new release's worker, started under the same worker id as the procedure
says (a StatefulSet pod, a systemd instance), from its checkpoints: no step repeated (the
sandbox ledger counts every request). From this release on, workers drain
(`drain_timeout_s`), and a job longer than the drain resumes the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from portwright.adapters import AdapterRegistry
from portwright.orchestrator import JobService, Runtime
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.settings import Settings
from portwright.store import head_revisions
from portwright.testing import EchoAdapter, wait_until_sync
from tests.conftest import SKIP_PG, pg_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
# main before `0014_accounts` was merged: its migration chain ends at 0013_rollouts
PREVIOUS_RELEASE = "24a8979"
PREVIOUS_HEAD = "0013"  # 0013_rollouts

STEPS = 3
PAUSE_S = 20.0  # the durable sleep after each step: the window the upgrade happens in


def _previous_src(into: Path) -> Path:
    """The previous release's `src`, from git history; a clear failure without it."""
    archive = into / "previous.tar"
    made = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive),
         PREVIOUS_RELEASE, "src"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.fail(
            f"the upgrade test needs the previous release {PREVIOUS_RELEASE} from git history "
            f"(a full clone: `git fetch --unshallow`, or CI's `fetch-depth: 0`): "
            f"{made.stderr.strip()[:500]}"
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


class Release:
    """Commands of one release: `src` None is this checkout (the virtualenv's install)."""

    def __init__(self, name: str, src: Path | None, env: dict[str, str], logs: Path) -> None:
        self.name, self.src, self.logs = name, src, logs
        self.env = dict(env)
        if src is not None:
            self.env["PYTHONPATH"] = os.pathsep.join([str(src), str(ROOT)])
        else:
            self.env["PYTHONPATH"] = str(ROOT)
        self.expected = str((src if src is not None else ROOT / "src") / "portwright")

    def run(self, *args: str, timeout: float = 240) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{self.name}: {args} exited {done.returncode}:\n" + (
            done.stdout[-2000:] + done.stderr[-3000:]
        )
        return done.stdout

    def migrate(self) -> str:
        return self.run("-m", "portwright.cli", "migrate")

    def helper(self, *args: str) -> str:
        out = self.run("-m", "tests.deploy.upgrade_release", *args)
        self.check_release(out)
        return out

    def check_release(self, out: str) -> None:
        line = next((x for x in out.splitlines() if x.startswith("release ")), "")
        assert line.removeprefix("release ").startswith(self.expected), (
            f"{self.name} imported {line!r}, not from {self.expected}"
        )

    def log(self, worker_id: str) -> Path:
        return self.logs / f"{self.name.split()[0]}-{worker_id}.log"

    def worker(self, worker_id: str) -> subprocess.Popen[bytes]:
        env = {**self.env, "PORTWRIGHT_WORKER_ID": worker_id}
        with self.log(worker_id).open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.deploy.upgrade_release", "worker"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _heads(db_url: str) -> set[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            return {str(row[0]) for row in rows}
    finally:
        engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    if SKIP_PG:
        pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
    with contextmanager(pg_database)("pw_upgrade") as url:
        yield url


def test_a_job_started_on_the_previous_release_finishes_once_on_the_new(
    pg_url: str, tmp_path: Path
) -> None:
    previous_src = _previous_src(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    with SandboxWorld([echo_service("echo")], seed=7) as world:
        echo = world.url("echo")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
        env.update(
            PORTWRIGHT_DATABASE_URL=pg_url,
            PORTWRIGHT_DATA_DIR=str(tmp_path / "data"),
            PORTWRIGHT_CHROMIUM="none",
            PORTWRIGHT_HEARTBEAT_INTERVAL_S="0.3",
            PORTWRIGHT_DEAD_WORKER_AFTER_S="2",
            PORTWRIGHT_QUEUE_POLLING_INTERVAL_S="0.05",
            PORTWRIGHT_LOG_LEVEL="INFO",
            PORTWRIGHT_URL_ALLOWLIST=json.dumps([echo.split("://", 1)[-1]]),
        )
        old = Release("previous release", previous_src, env, logs)
        new = Release("new release", None, env, logs)

        # 1. The previous release runs: its migrations on a fresh database, its worker.
        old.migrate()
        assert PREVIOUS_HEAD in _heads(pg_url)
        old_worker: subprocess.Popen[bytes] | None = old.worker("w1")
        new_worker: subprocess.Popen[bytes] | None = None
        try:
            data = {"url": echo, "key": "upgrade", "steps": STEPS, "pause_s": PAUSE_S}
            out = old.helper("submit", "acme", json.dumps(data))
            job_id = out.strip().splitlines()[-1]
            ledger = world.ledger("echo")

            # 2. The old worker started the job: its first step is done, it sleeps durably.
            def first_step() -> bool:
                assert old_worker is not None
                assert old_worker.poll() is None, old.log("w1").read_text()[-3000:]
                return ledger.count("hit", "upgrade") >= 1

            wait_until_sync(first_step, timeout=120, every=0.1)
            old.check_release(old.log("w1").read_text())

            # 3. The new release's migrations run while the old worker still runs the job...
            new.migrate()
            heads = _heads(pg_url)
            assert heads == set(head_revisions()), heads  # this release's every head
            assert PREVIOUS_HEAD not in heads, heads
            assert old_worker.poll() is None, "the old worker died when the schema changed"
            # ... and it is told to stop (SIGTERM), as a rolling deploy does.
            old_worker.terminate()
            code = old_worker.wait(timeout=60)
            old_log = old.log("w1").read_text()
            assert code == 0, old_log[-3000:]
            old_worker = None
            assert ledger.count("hit", "upgrade") < STEPS, (
                "the job ended on the old release: the upgrade window (PAUSE_S) was too short "
                "for this machine"
            )

            # 4. The new release's worker, under the same id, resumes the job and finishes it.
            new_worker = new.worker("w1")
            runtime = Runtime(
                Settings(database_url=pg_url, data_dir=tmp_path / "data"),
                _registry(),
                run_workers=False,
            ).start()
            try:
                svc = JobService(runtime)

                def finished() -> bool:
                    assert new_worker is not None
                    assert new_worker.poll() is None, new.log("w1").read_text()[-3000:]
                    return runtime.store.jobs.get(job_id).status in ("succeeded", "failed")

                wait_until_sync(finished, timeout=240, every=0.2)
                job = runtime.store.jobs.get(job_id)
                states = [e.to_state for e in runtime.store.jobs.events(job_id)]
                replay_matches = svc.replay(job_id).matches
            finally:
                runtime.stop()
            new.check_release(new.log("w1").read_text())
        finally:
            _stop(old_worker)
            _stop(new_worker)

    new_log = new.log("w1").read_text()
    assert job.status == "succeeded", (job.reason, new_log[-3000:])
    assert (job.state, job.output) == ("SUCCEEDED", {"value": "hello upgrade", "count": STEPS})
    # exactly once: every step requested once, across both releases
    assert [e.data["step"] for e in ledger.entries("hit")] == [str(s) for s in range(STEPS)]
    # the job's history is whole: each transition once, in order, and it replays
    assert states == ["INIT", "QUEUED", "FETCHING", "SUCCEEDED"], states
    assert replay_matches


def _registry() -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    return registry
