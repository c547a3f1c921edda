"""Gateway fixtures: one running gateway per database engine for the whole package.

Starting DBOS is the slow part, and it is a process singleton, so the stack
(runtime + gateway on a loopback port) is package-scoped and parametrized on
SQLite and PostgreSQL; tests isolate themselves by creating their own tenant.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.client import Client
from portwright.composition import build_runtime
from portwright.gateway import UrlGuard, create_app
from portwright.orchestrator import JobService
from portwright.resources.vault import Vault
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.sandbox.scrape import specs as scrape_specs
from portwright.settings import Settings, WebhookSource
from portwright.testing import EchoAdapter
from tests.conftest import pg_database
from tests.gateway._support import (
    SHOPIFY_SECRET,
    STANDARD_SECRET,
    STRIPE_SECRET,
    STRIPE_SECRET_NEXT,
    PaymentWaiter,
    SecretUser,
    ServerThread,
    Stack,
    new_tenant_name,
    redirector_service,
)

PG_BASE = os.environ.get("PORTWRIGHT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
SKIP_PG = os.environ.get("PORTWRIGHT_TEST_SKIP_POSTGRES") == "1"
ALLOWED_SERVICES = ("echo", "redirector", "scrape-static")


def _off_loop(fn: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


@pytest.fixture(scope="package")
def world() -> Iterator[SandboxWorld]:
    """Sandbox services the gateway tests fetch: echo, a redirector, the static catalogue,
    and a second echo ("echo-hidden") that is deliberately not allowlisted."""
    specs = [echo_service(), echo_service("echo-hidden"), redirector_service()]
    specs += [s for s in scrape_specs() if s.name == "scrape-static"]
    with SandboxWorld(specs, seed=3) as started:
        yield started


def allowlist_for(world: SandboxWorld) -> list[str]:
    return [world.url(name).removeprefix("http://") for name in ALLOWED_SERVICES]


def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'app.sqlite'}"
        return
    if SKIP_PG:
        pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
    yield from pg_database("pw_gw")


def gateway_settings(db_url: str, data_dir: Path, world: SandboxWorld, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": db_url,
        "worker_id": f"gw-{secrets.token_hex(3)}",
        "heartbeat_interval_s": 0.5,
        "dead_worker_after_s": 5.0,
        "queue_polling_interval_s": 0.05,
        "log_json": False,
        "master_key": SecretStr("test-master-key-" + "x" * 32),
        "url_allowlist": allowlist_for(world),
        "rate_limit_default": "100000/minute",
        "rate_limit_write": "100000/minute",
        "rate_limit_sensitive": "100000/minute",
        "rate_limit_auth_failures": "100000/minute",
        "api_key_cache_s": 0.0,
        "max_body_bytes": 64 * 1024,
        "webhook_sources": {
            "consulate": WebhookSource(
                scheme="stripe",
                secrets=[SecretStr(STRIPE_SECRET), SecretStr(STRIPE_SECRET_NEXT)],
                handler="payment",
            ),
            "shop-beta": WebhookSource(scheme="standard", secrets=[SecretStr(STANDARD_SECRET)]),
            "shop-alpha": WebhookSource(scheme="shopify", secrets=[SecretStr(SHOPIFY_SECRET)]),
            "shop-strict": WebhookSource(
                scheme="shopify", secrets=[SecretStr(SHOPIFY_SECRET)], require_timestamp=True
            ),
        },
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture(
    scope="package", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, world: SandboxWorld
) -> Iterator[Stack]:
    """A started runtime (with workers) and its gateway served on a loopback port."""
    tmp = tmp_path_factory.mktemp(f"gw-{request.param}")
    for db_url in _database(request.param, tmp):
        settings = gateway_settings(db_url, tmp / "data", world)
        guard = UrlGuard.from_allowlist(settings.url_allowlist)
        registry = AdapterRegistry()
        for adapter in (EchoAdapter, PaymentWaiter, SecretUser, ScrapeAdapter.with_guard(guard)):
            registry.register(adapter)
        vault = Vault.from_settings(settings)
        runtime = build_runtime(settings, registry, secrets=vault)
        _off_loop(runtime.start)
        service = JobService(runtime)
        server = ServerThread(create_app(service, settings, vault=vault), settings).start()
        try:
            yield Stack(request.param, runtime, service, settings, server, world.urls())
        finally:
            server.stop()
            _off_loop(runtime.stop)
            vault.close()


@pytest.fixture
def api_key(stack: Stack) -> str:
    """A fresh tenant's API key (every test works in its own tenant)."""
    return stack.new_key(new_tenant_name())


@pytest.fixture
def client(stack: Stack, api_key: str) -> Iterator[Client]:
    with Client(stack.base_url, api_key) as pw:
        yield pw


@pytest.fixture
def serve_variant(stack: Stack, world: SandboxWorld) -> Iterator[Any]:
    """Serve another gateway app on the same runtime with some settings changed."""
    servers: list[ServerThread] = []

    def serve(**overrides: Any) -> str:
        settings = stack.settings.model_copy(update=overrides)
        server = ServerThread(create_app(stack.service, settings), settings).start()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()
