"""A real `portwright worker` rides out a PostgreSQL outage: the database behind a local TCP
proxy refuses connections for a while, the worker stays up and logs why it is idle, and once
the database is back it runs a job submitted after the outage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld, scrape
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.dbproxy import DatabaseProxy
from tests.support import ROOT

PG_TARGET = ("127.0.0.1", 5432)


def _log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of the worker's log (DBOS's own plain lines are skipped)."""
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


def _events(path: Path) -> list[str]:
    return [str(line.get("event")) for line in _log_lines(path)]


async def _ride_out(
    outage_s: float,
    db_url: str,
    settings: Settings,
    service_for: Callable[..., JobService],
    tmp_path: Path,
) -> None:
    from portwright.cli._stack import platform_registry

    with SandboxWorld(scrape.specs(), seed=7) as world, DatabaseProxy(PG_TARGET) as proxy:
        ports = sorted({url.rsplit(":", 1)[1] for url in world.urls().values()})
        allow = [f"127.0.0.1:{port}" for port in ports]
        key = "outage-test-master-key-" + "z" * 32
        mine = settings.model_copy(update={"url_allowlist": allow, "master_key": SecretStr(key)})
        # The test's own runtime submits and reads jobs straight to PostgreSQL (it never
        # runs them); the worker reaches the same database only through the proxy.
        svc = service_for(platform_registry(mine, browsers=False), settings=mine, run_workers=False)
        tenant = svc.store.tenants.ensure("acme")
        log = tmp_path / "worker.log"
        env = {
            **os.environ,
            "PORTWRIGHT_DATA_DIR": str(mine.data_dir),
            "PORTWRIGHT_DATABASE_URL": proxy.url_for(db_url),
            "PORTWRIGHT_URL_ALLOWLIST": json.dumps(allow),
            "PORTWRIGHT_MASTER_KEY": key,
            "PORTWRIGHT_LOG_JSON": "true",
            "PORTWRIGHT_HEARTBEAT_INTERVAL_S": "0.5",
            "PORTWRIGHT_QUEUE_POLLING_INTERVAL_S": "0.2",
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: ASYNC220 - started once; polled off the loop below
                [sys.executable, "-m", "portwright.cli", "worker", "--worker-id", "outage-w1"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:

            async def heartbeating() -> bool:
                assert proc.poll() is None, log.read_text()[-3000:]
                # started, not only heartbeating: the heartbeat begins while the runtime
                # still starts, and a database gone then is "could not start" (exit 1),
                # which a CI rehearsal hit
                if "worker running" not in _events(log):
                    return False
                workers = await asyncio.to_thread(svc.store.workers.all)
                return any(w.id == "outage-w1" and w.status == "alive" for w in workers)

            await wait_until(heartbeating, timeout=90, every=0.2)

            proxy.down("refuse")
            try:
                # The outage lasts `outage_s`: the worker must stay up all along and say why
                # it is idle (one line when it starts, not a traceback per round).
                # (waiting on the process itself: an exit ends the wait at once)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(proc.wait, timeout=outage_s)
                assert proc.poll() is None, log.read_text()[-3000:]
                events = _events(log)
                assert "database unreachable; retrying with backoff" in events, events[-20:]
            finally:
                proxy.up()

            url = f"{world.url('scrape-static')}/product/5"
            job = await svc.submit(
                tenant_id=tenant.id, adapter="scrape", input={"url": url, "engine": "http"}
            )

            async def ended() -> Any:
                assert proc.poll() is None, log.read_text()[-3000:]
                current = await svc.get(job.id)
                return current if current.status in ("succeeded", "failed") else None

            done = await wait_until(ended, timeout=120, every=0.5)
            assert done.status == "succeeded", (done.reason, log.read_text()[-3000:])
            assert proc.poll() is None  # still alive after the outage and the job
            lines = _log_lines(log)
            down = [x for x in lines if x.get("event", "").startswith("database unreachable")]
            assert any(x.get("loop") == "janitor" for x in down), down
            # The log names the cause. The first line may come from a pooled connection the
            # outage cut ("server closed the connection"); new connections are refused, and a
            # changed cause gets a line of its own at once ("database still unreachable").
            down += [x for x in lines if x.get("event", "").startswith("database still")]
            assert any("Connection refused" in str(x.get("error")) for x in down), down

            async def said_back() -> bool:
                return "database reachable again; carrying on" in _events(log)

            await wait_until(said_back, timeout=30, every=0.2)
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, timeout=60)
        # A stopped worker says why, as its last JSON line.
        last = _log_lines(log)[-1]
        assert last["event"] == "worker exiting", last
        assert last["reason"] == "received SIGTERM"
        assert proc.returncode == 0, log.read_text()[-3000:]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.timeout(240)
async def test_a_worker_rides_out_a_short_database_outage(
    db_url: str, settings: Settings, service_for: Callable[..., JobService], tmp_path: Path
) -> None:
    """A 10 s outage: the worker stays up, logs it, and runs a job submitted afterwards."""
    await _ride_out(10.0, db_url, settings, service_for, tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.timeout(360)
async def test_a_worker_rides_out_a_60s_database_outage(
    db_url: str, settings: Settings, service_for: Callable[..., JobService], tmp_path: Path
) -> None:
    """The issue's case: 60 s without the database, then a job runs on the same worker."""
    await _ride_out(60.0, db_url, settings, service_for, tmp_path)
