"""`portwright consulate-watch` as its own process: bookings submitted with watch=true are
served by it and book; it stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portwright.adapters import default_registry
from portwright.orchestrator import JobService
from portwright.resources import StaticSecrets
from portwright.sandbox import SandboxWorld, consulate, inbox
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.support import reaching

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    options = {"initial_slots": 2, "release_every_s": 1e7, "take_mean_s": 1e9,
               "payment_delay_s": 0.2, "hold_ttl_s": 300.0}  # fmt: skip
    with SandboxWorld([*inbox.specs(), *consulate.specs(options)], seed=22) as started:
        yield started


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    return reaching(settings, world)


async def test_the_watch_command_serves_watching_bookings(
    service_for: Callable[..., JobService], settings: Settings, world: SandboxWorld,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Two bookings wait with watch=true; the command's process finds them, scans, hands
    each a slot; both book; SIGTERM ends the command with status 0."""
    secrets = StaticSecrets({f"user{n}@example.test": f"pw-{n}" for n in (1, 2)})
    svc = service_for(default_registry(), secrets=secrets)
    tenant = svc.store.tenants.ensure("watch-cli")
    ids = []
    for n in (1, 2):
        job = await svc.submit(tenant_id=tenant.id, adapter="consulate", input={
            "portal_url": world.url("consulate"), "inbox_url": world.url("inbox"),
            "account_email": f"user{n}@example.test", "center": "MAN", "visa_type": "work",
            "otp_source": "inbox", "watch": True, "deadline_s": 600.0, "payment_wait_s": 1.0,
        })  # fmt: skip
        ids.append(job.id)
    env = {
        **os.environ,
        "PORTWRIGHT_DATABASE_URL": settings.app_database_url,
        "PORTWRIGHT_DATA_DIR": str(settings.data_dir),
        "PORTWRIGHT_WORKER_ID": "watch-cli",
        "PORTWRIGHT_LOG_LEVEL": "WARNING",
        "PORTWRIGHT_URL_ALLOWLIST": json.dumps(settings.url_allowlist),
        "PORTWRIGHT_WATCH_PASSWORD": "pw-9",
    }
    command = [sys.executable, "-m", "portwright.cli", "consulate-watch",
               "--portal-url", world.url("consulate"), "--account", "user9@example.test",
               "--sync-every", "0.5"]  # fmt: skip
    log = tmp_path / "watch.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; waiting is wait_until
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        await wait_until(
            lambda: all(svc.store.jobs.get(i).state == "CONFIRMED" for i in ids),
            timeout=240, every=0.3,
        )  # fmt: skip
    finally:
        proc.terminate()
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()
    slots = {(svc.store.jobs.get(i).output or {})["slot_id"] for i in ids}
    assert len(slots) == 2
    assert svc.store.intel.slots.history("consulate", "MAN", "work")
