"""Stopping a worker (SIGTERM, as an orchestrator or systemd does) in the middle of a job's
step, then starting a worker — the same id (a StatefulSet pod or a systemd instance coming
back) or another one (a compose replica recreated under a new id) — finishes the job: nothing
is lost, and the step that was cut off runs again. Another id takes the stopped worker's
pending jobs over once its heartbeat is `dead_worker_after_s` old, as for a crashed one."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from portwright.orchestrator import JobService
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.deploy.conftest import ROOT

PAGE = b"<html><body><h1 class='title'>Restarted</h1></body></html>"


@contextmanager
def _held_portal() -> Iterator[tuple[str, threading.Event, list[float]]]:
    """A loopback page whose answers wait for `release` (bounded) and count requests."""
    release = threading.Event()
    seen: list[float] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(1.0)
            release.wait(timeout=120)
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", release, seen
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def _worker(env: dict[str, str], worker_id: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "portwright.cli", "worker", "--worker-id", worker_id],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.mark.timeout(400)
@pytest.mark.parametrize("next_id", ["restart-w1", "restart-w2"], ids=["same-id", "another-id"])
async def test_a_job_cut_off_by_sigterm_finishes_on_the_next_worker(
    settings: Settings, service_for: Callable[..., JobService], tmp_path: Path, next_id: str
) -> None:
    from portwright.cli._stack import platform_registry

    with _held_portal() as (host, release, seen):
        key = "restart-test-master-key-" + "r" * 32
        mine = settings.model_copy(update={"url_allowlist": [host], "master_key": SecretStr(key)})
        svc = service_for(platform_registry(mine, browsers=False), settings=mine,
                          run_workers=False)  # fmt: skip
        tenant = svc.store.tenants.ensure("acme")
        job = await svc.submit(
            tenant_id=tenant.id, adapter="scrape",
            input={"url": f"http://{host}/item", "engine": "http",
                   "extract": {"title": {"selector": "h1.title"}}},
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTWRIGHT_")}
        env.update(
            PORTWRIGHT_DATA_DIR=str(mine.data_dir),
            PORTWRIGHT_DATABASE_URL=str(mine.database_url),
            PORTWRIGHT_URL_ALLOWLIST=json.dumps([host]),
            PORTWRIGHT_MASTER_KEY=key,
            PORTWRIGHT_CHROMIUM="none",
            PORTWRIGHT_HEARTBEAT_INTERVAL_S="0.3",
            PORTWRIGHT_DEAD_WORKER_AFTER_S="2",
            PORTWRIGHT_LOG_JSON="true",
            # stop at once (no drain): the step is cut off, as by an orchestrator's SIGKILL
            # after its grace period (the drain is tests/orchestrator/test_worker_drain.py)
            PORTWRIGHT_DRAIN_TIMEOUT_S="0",
        )
        log = tmp_path / "worker.log"
        first = _worker(env, "restart-w1", log)
        try:
            await wait_until(lambda: len(seen) >= 1, timeout=120, every=0.1)  # mid-step
            current = await svc.get(job.id)
            assert current.status == "running"
            first.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(first.wait, 60)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert code == 0, log.read_text()[-2000:]
        stopped = (await svc.get(job.id)).status
        assert stopped == "running", "the job is neither lost nor finished by a stopped worker"
        release.set()  # the portal answers from now on
        second = _worker(env, next_id, log)
        try:

            async def finished() -> Any:
                now = await svc.get(job.id)
                return now if now.status in ("succeeded", "failed") else None

            done = await wait_until(finished, timeout=180, every=0.3)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 60)
        assert done.status == "succeeded", (done.reason, log.read_text()[-3000:])
        assert done.output["extracted"]["title"] == "Restarted"
        assert len(seen) >= 2  # the cut-off request, then the step again
        seqs = [e.seq for e in await svc.events(job.id)]
        assert seqs == list(range(1, len(seqs) + 1))  # one trail, no transition written twice
