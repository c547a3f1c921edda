"""Console fixtures: one running gateway (+ console) on SQLite, operators, one Chromium.

DBOS is a process singleton, so the stack is package-scoped; tests isolate
themselves with their own tenants. Chromium is the machine's (Debian) build.
The world serves the echo page, and scenario 1's consulate with its inbox; the
runtime reads portal passwords from the vault (the console opens them, audited).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.apps.consulate import ConsulateAdapter
from portwright.composition import build_runtime
from portwright.gateway import create_app
from portwright.orchestrator import JobService
from portwright.resources.vault import Vault
from portwright.sandbox import SandboxWorld, consulate, inbox
from portwright.sandbox.echo import echo_service
from portwright.settings import Settings
from portwright.testing import EchoAdapter
from tests.console._support import Console
from tests.gateway._support import ServerThread
from tests.support import headless_chromium

SHOTS = Path(__file__).parent / "screenshots"


def _off_loop(fn: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


@pytest.fixture(scope="package")
def world() -> Iterator[SandboxWorld]:
    portal = {"initial_slots": 6, "take_mean_s": 3600.0, "hold_ttl_s": 120.0,
              "payment_delay_s": 0.2}  # fmt: skip
    specs = [echo_service(), *inbox.specs(), *consulate.specs(portal)]
    with SandboxWorld(specs, seed=11) as started:
        yield started


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory, world: SandboxWorld) -> Iterator[Console]:
    """A started runtime with workers, its gateway and console on a loopback port."""
    tmp = tmp_path_factory.mktemp("console")
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'app.sqlite'}",
        worker_id=f"console-{secrets.token_hex(3)}",
        heartbeat_interval_s=0.5,
        dead_worker_after_s=5.0,
        queue_polling_interval_s=0.05,
        log_json=False,
        master_key=SecretStr("test-master-key-" + "x" * 32),
        url_allowlist=[url.removeprefix("http://") for url in world.urls().values()],
    )
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    registry.register(ConsulateAdapter)
    vault = Vault.from_settings(settings)
    runtime = build_runtime(settings, registry, secrets=vault)
    _off_loop(runtime.start)
    service = JobService(runtime)
    app = create_app(service, settings, vault=vault)
    server = ServerThread(app).start()
    try:
        yield Console(service, server.url, world, app)
    finally:
        server.stop()
        _off_loop(runtime.stop)
        vault.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the console tests (each test opens its own context)."""
    SHOTS.mkdir(exist_ok=True)
    with headless_chromium() as chromium:
        yield chromium
