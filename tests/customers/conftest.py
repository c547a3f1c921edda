"""Customer-side fixtures: a runtime, its gateway (with the portal at /app) on loopback, and a
sandbox world with the inbox, the SMTP server and the consulate; on SQLite and PostgreSQL.

Email goes through the real SMTP server (aiosmtpd) into the inbox; SMS goes to the inbox's
SMS stand-in. Links in messages point at this gateway (`public_url`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.apps.consulate import ConsulateAdapter
from portwright.gateway import create_app
from portwright.orchestrator import JobService
from portwright.resources.vault import Vault
from portwright.sandbox import SandboxWorld, consulate, inbox, mail
from portwright.settings import Settings
from portwright.testing import EchoAdapter
from tests.customers._support import AskingAdapter, Portal, Receiver
from tests.gateway._support import ServerThread
from tests.support import reaching

HOLD_S = 40.0
SHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    portal = {
        "initial_slots": 4,
        "take_mean_s": 3600.0,
        "hold_ttl_s": HOLD_S,
        "payment_delay_s": 0.1,
    }
    with SandboxWorld([*inbox.specs(), *mail.specs(), *consulate.specs(portal)], seed=17) as w:
        yield w


@pytest.fixture
def portal(
    settings: Settings, world: SandboxWorld, service_for: Callable[..., JobService]
) -> Iterator[Portal]:
    """A started runtime and gateway; its email and SMS channels go to the sandbox."""
    server = ServerThread(None)  # type: ignore[arg-type]  # the app comes once its URL is known
    receiver = Receiver()
    receiver.server = ServerThread(receiver.app()).start()
    try:
        yield from _serve(server, settings, world, service_for, receiver)
    finally:
        server.sock.close()
        receiver.server.stop()


def _serve(
    server: ServerThread,
    settings: Settings,
    world: SandboxWorld,
    service_for: Callable[..., JobService],
    receiver: Receiver,
) -> Iterator[Portal]:
    assert receiver.server is not None
    tuned = reaching(settings, world).model_copy(
        update={
            "master_key": SecretStr("customers-test-master-key-" + "k" * 32),
            "smtp_url": world.url("smtp"),
            "sms_url": world.url("inbox") + "/sms",
            "public_url": server.url,
            "api_key_cache_s": 0.0,
            "url_allowlist": [
                *reaching(settings, world).url_allowlist,
                receiver.server.url.removeprefix("http://"),
            ],  # revocations and disabled users count at once
        }
    )
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    registry.register(AskingAdapter)
    registry.register(ConsulateAdapter)
    vault = Vault.from_settings(tuned)
    service = service_for(registry, settings=tuned, secrets=vault)
    app = create_app(service, tuned, vault=vault)
    server.server.config.app = app
    server.start()
    running = Portal(service, tuned, server.url, world, app, receiver)
    try:
        yield running
    finally:
        running.close()
        server.stop()
        vault.close()
