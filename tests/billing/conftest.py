"""Billing fixtures: a runtime and gateway (portal at /app) with billing on the sandbox's
localstripe, on SQLite and PostgreSQL. localstripe signs its events and sends them to the
gateway's `/v1/hooks/payments` (scheme "stripe", handler "billing"); the grace period runs
on a manual clock the test moves."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import stripe
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.billing import Billing, billing_from
from portwright.gateway import create_app
from portwright.orchestrator import JobService
from portwright.resources.vault import Vault
from portwright.sandbox import SandboxWorld, inbox, mail, payments
from portwright.settings import BillingConfig, Settings, WebhookSource
from portwright.testing import EchoAdapter, ManualClock
from tests.customers._support import Portal, Receiver
from tests.gateway._support import ServerThread
from tests.support import reaching

GRACE_S = 3 * 86_400.0
PRICES = {"growth": 4900, "business": 19900}


@dataclass
class Billed:
    portal: Portal
    billing: Billing
    clock: ManualClock
    secret: str  # the payments webhook secret
    stripe: stripe.StripeClient  # the test's own client of localstripe (acting as Stripe.js)


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    payments.load()  # its import is slow on a loaded machine: not inside the start deadline
    w = SandboxWorld([*inbox.specs(), *mail.specs(), *payments.specs()], seed=17)
    w.start(timeout=60)
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def billed(
    settings: Settings, world: SandboxWorld, service_for: Callable[..., JobService]
) -> Iterator[Billed]:
    server = ServerThread(None)  # type: ignore[arg-type]  # the app comes once its URL is known
    receiver = Receiver()
    secret = "whsec_" + secrets.token_urlsafe(18)
    config = BillingConfig(
        provider="stripe",
        api_key=SecretStr(payments.SANDBOX_SECRET_KEY),
        api_base=world.url("payments"),
        prices=PRICES,
        grace_period_s=GRACE_S,
        sweep_every_s=3600.0,  # the test sweeps itself, on its clock
    )
    tuned = reaching(settings, world).model_copy(
        update={
            "master_key": SecretStr("billing-test-master-key-" + "k" * 32),
            "smtp_url": world.url("smtp"),
            "public_url": server.url,
            "api_key_cache_s": 0.0,
            "billing": config,
            "webhook_sources": {
                "payments": WebhookSource(
                    scheme="stripe", secrets=[SecretStr(secret)], handler="billing"
                )
            },
        }
    )
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    vault = Vault.from_settings(tuned)
    service = service_for(registry, settings=tuned, secrets=vault)
    clock = ManualClock(time.time())
    billing = billing_from(service.store, config, clock=clock.now, public_url=server.url)
    assert billing is not None
    app = create_app(service, tuned, vault=vault, billing=billing)
    server.server.config.app = app
    server.start()
    payments.register_webhook(world, f"{server.url}/v1/hooks/payments", secret)
    portal = Portal(service, tuned, server.url, world, app, receiver)
    client = stripe.StripeClient(
        payments.SANDBOX_SECRET_KEY, base_addresses={"api": world.url("payments")}
    )
    try:
        yield Billed(portal, billing, clock, secret, client)
    finally:
        portal.close()
        server.stop()
        server.sock.close()
        vault.close()
