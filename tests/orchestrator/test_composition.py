"""The composition root builds every process's runtime: the DBOS host and the typed ports a
job needs are its two halves, on SQLite and PostgreSQL; the relay is built there too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from portwright.adapters import AdapterRegistry
from portwright.composition import build_relay, build_runtime, platform_runtime
from portwright.orchestrator import DbosHost, JobPorts, Runtime
from portwright.resources import StaticSecrets
from portwright.resources.ssrf import UrlRefusedError
from portwright.resources.vault import Vault
from portwright.settings import Settings
from portwright.testing import EchoAdapter


def _off_loop(fn: Callable[[], Any]) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def test_a_built_runtime_is_a_dbos_host_and_the_ports_of_a_job(settings: Settings) -> None:
    """`build_runtime` makes a runtime over the parts given; started, its host has launched
    DBOS and its ports are the store it opened, the registry, identities, secrets, blobs
    and (none here) fleet; stopped, the host is down."""
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    secrets = StaticSecrets({})
    runtime = build_runtime(settings, registry, secrets=secrets)
    assert isinstance(runtime, Runtime)
    with pytest.raises(RuntimeError, match="not started"):
        _ = runtime.host
    _off_loop(runtime.start)
    try:
        assert isinstance(runtime.host, DbosHost)
        assert runtime.host.launched
        assert runtime.host.datasource is runtime.datasource
        ports = runtime.ports
        assert isinstance(ports, JobPorts)
        assert ports.store is runtime.store
        assert ports.registry is registry
        assert ports.secrets is secrets
        assert ports.identities is runtime.identity
        assert ports.blobs is runtime.blobs
        assert ports.fleet is None
        assert ports.guard is runtime.guard
        assert runtime.has_queue(EchoAdapter.portal_name())
    finally:
        _off_loop(runtime.stop)
    assert not runtime.host.launched


def test_the_platform_runtime_of_a_gateway_takes_its_secrets_from_the_vault(
    settings: Settings,
) -> None:
    """`platform_runtime` (what `api`, `worker`, `up` and `demo` run): every installed
    adapter plus scrape, portal secrets from the vault; a gateway-only one has no fleet."""
    runtime, vault = _off_loop(lambda: platform_runtime(settings, run_workers=False))
    try:
        assert isinstance(vault, Vault)
        ports = runtime.ports
        assert ports.secrets is vault
        assert ports.fleet is None
        names = set(ports.registry.names())
        assert {"scrape", "consulate", "jobboard"} <= names
    finally:
        _off_loop(runtime.stop)
        vault.close()


async def test_the_relay_is_built_behind_the_ssrf_guard(settings: Settings) -> None:
    """`build_relay` (what `python -m portwright.delivery` runs): its client refuses a
    loopback address that is not on the allowlist, before connecting."""
    from portwright.store import Store

    store = await asyncio.to_thread(Store.open, settings.app_database_url)
    vault = Vault.from_settings(settings, store=store)
    relay = build_relay(settings, store, vault, poll_s=0.05, timeout_s=2.0)
    try:
        assert relay.sinks == []
        with pytest.raises(UrlRefusedError, match=r"127\.0\.0\.1.*a loopback address"):
            await relay.client.post("http://127.0.0.1:9/hook", content=b"{}")
    finally:
        await relay.client.aclose()
        vault.close()
        store.close()
