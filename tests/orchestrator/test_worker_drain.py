"""A worker told to stop (SIGTERM) drains: it takes no more work, finishes the job it runs
within `drain_timeout_s` while it keeps heartbeating (nobody takes it over), then exits 0;
work queued meanwhile is left for another worker, which runs it. Nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from portwright.adapters import AdapterRegistry
from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.settings import Settings
from portwright.testing import EchoAdapter, wait_until
from tests.support import Worker, reaching

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _registry() -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    return registry


def _events(log: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            line = json.loads(raw)
            if isinstance(line, dict):
                lines.append(line)
    return lines


async def test_a_sigterm_drains_the_running_job_and_leaves_new_work_for_others(
    settings: Settings, service_for: Callable[..., JobService], tmp_path: Path
) -> None:
    with SandboxWorld([echo_service("echo")], seed=1) as world:
        await _drain(reaching(settings, world), service_for, world, tmp_path)


async def _drain(
    settings: Settings,
    service_for: Callable[..., JobService],
    world: SandboxWorld,
    tmp_path: Path,
) -> None:
    svc = service_for(_registry(), run_workers=False)
    tenant = svc.store.tenants.ensure("acme")
    echo = world.url("echo")
    first = Worker(
        settings, world, "drain-a", tmp_path / "a.log", "tests.orchestrator.drain_worker"
    )
    first.env["PORTWRIGHT_DRAIN_TIMEOUT_S"] = "60"
    first.env["PORTWRIGHT_LOG_LEVEL"] = "INFO"
    first.start()
    second: Worker | None = None
    try:
        # three steps with a 2 s durable sleep between each: ~4 s of work after it starts
        long = await svc.submit(
            tenant_id=tenant.id,
            adapter="echo",
            input={"url": echo, "key": "long", "steps": 3, "pause_s": 2.0},
        )

        async def started() -> bool:
            assert first.proc is not None
            assert first.proc.poll() is None, first.log.read_text()
            return (await svc.get(long.id)).status == "running"

        await wait_until(started, timeout=90, every=0.1)
        assert first.proc is not None
        first.proc.terminate()  # SIGTERM

        # submitted once the worker says it drains: it must not start it (submitted at once
        # after the signal, a CI rehearsal's worker dequeued it before its drain began)
        def draining() -> bool:
            assert first.proc is not None
            code = first.proc.poll()  # before the log is read: an exit then has logged all
            said = "draining: taking no more work" in [e.get("event") for e in _events(first.log)]
            # an exit without the line ends the wait at once, with the log
            assert said or code is None, (code, first.log.read_text()[-3000:])
            return said

        await wait_until(draining, timeout=60)
        late = await svc.submit(
            tenant_id=tenant.id, adapter="echo", input={"url": echo, "key": "late"}
        )
        code = await asyncio.to_thread(first.proc.wait, 90)
        assert code == 0, first.log.read_text()[-3000:]

        done = await svc.get(long.id)
        assert done.status == "succeeded", (done.reason, first.log.read_text()[-3000:])
        events = _events(first.log)
        names = [e.get("event") for e in events]
        assert "draining: taking no more work" in names, names
        assert "drained" in names, names
        exits = [e for e in events if e.get("event") == "worker exiting"]
        assert exits, names
        assert exits[-1]["reason"] == "received SIGTERM", exits
        # the job ended before the process did, and no other worker was running: it
        # finished here; the job submitted during the drain was not started
        assert (await svc.get(late.id)).status == "queued"

        # nothing lost: another worker runs what was queued meanwhile
        second = Worker(
            settings, world, "drain-b", tmp_path / "b.log", "tests.orchestrator.drain_worker"
        )
        second.start()

        async def late_done() -> bool:
            return (await svc.get(late.id)).status == "succeeded"

        await wait_until(late_done, timeout=120, every=0.2)
    finally:
        first.stop()
        if second is not None:
            second.stop()
