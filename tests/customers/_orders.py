"""A customer-side stack for directory orders: a runtime with the directories adapters and a
captcha solver, its gateway with the portal, and a sandbox world with the inbox (email over
SMTP, SMS, the bot and chat-webhook stand-ins), the directories and the captcha service; on
SQLite and PostgreSQL (the `settings` fixture)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import SecretStr

from portwright.apps.directories import DirectoryFormAdapter, DirectorySubmissionAdapter
from portwright.billing import billing_from
from portwright.gateway import create_app
from portwright.orchestrator import JobService
from portwright.resources import TwoCaptchaSolver
from portwright.resources.vault import Vault
from portwright.sandbox import SandboxWorld, captcha, directories, inbox, mail, payments
from portwright.settings import BillingConfig, Settings, WebhookSource
from portwright.testing import EchoAdapter
from tests.adapters.test_directories import CATALOG
from tests.customers._support import PASSWORD, Portal, Receiver
from tests.gateway._support import ServerThread
from tests.orchestrator._support import registry
from tests.support import reaching

STAFF_ROOM = "staff-alerts"

PROFILE: dict[str, Any] = {
    "name": "Harbour Lights Bakery",
    "address": {"street": "12 Quay St", "city": "Bristol", "postcode": "BS1 4DJ", "country": "UK"},
    "phone": "+44 117 496 0123",
    "website": "https://harbour-lights.example",
    "category": "bakery",
    "hours": "Mon-Sat 07:00-17:00",
}


def serve_orders(
    settings: Settings,
    world: SandboxWorld,
    service_for: Callable[..., JobService],
    *,
    billing: BillingConfig | None = None,
    **runtime: Any,
) -> Iterator[Portal]:
    """The stack; with `billing`, also billing on the world's localstripe ("payments"),
    its signed events coming back to `/v1/hooks/payments`."""
    server = ServerThread(None)  # type: ignore[arg-type]  # the app comes once its URL is known
    receiver = Receiver()
    receiver.server = ServerThread(receiver.app()).start()
    reach = reaching(settings, world)
    hook_secret = "whsec_" + secrets.token_urlsafe(18)
    billed: dict[str, Any] = {}
    if billing is not None:
        billed = {
            "billing": billing,
            "webhook_sources": {
                "payments": WebhookSource(
                    scheme="stripe", secrets=[SecretStr(hook_secret)], handler="billing"
                )
            },
        }
    tuned = reach.model_copy(
        update={
            **billed,
            "master_key": SecretStr("customers-orders-master-key-" + "k" * 32),
            "smtp_url": world.url("smtp"),
            "sms_url": world.url("inbox") + "/sms",
            "bot_api_url": world.url("inbox"),
            "bot_token": SecretStr("123:sandbox-bot"),
            "staff_chat_webhook_url": f"{world.url('inbox')}/chat/{STAFF_ROOM}",
            "public_url": server.url,
            "api_key_cache_s": 0.0,
            "url_allowlist": [
                *reach.url_allowlist,
                receiver.server.url.removeprefix("http://"),
            ],
        }
    )
    solver = TwoCaptchaSolver(world.url("captcha-solver"), "sandbox-key", poll_s=0.05)
    vault = Vault.from_settings(tuned)
    service = service_for(
        registry(DirectorySubmissionAdapter, DirectoryFormAdapter, EchoAdapter),
        settings=tuned,
        secrets=vault,
        **({"captcha": solver} | runtime),
    )
    billing_service = (
        None if billing is None else billing_from(service.store, billing, public_url=server.url)
    )
    app = create_app(service, tuned, vault=vault, billing=billing_service)
    server.server.config.app = app
    server.start()
    if billing is not None:
        payments.register_webhook(world, f"{server.url}/v1/hooks/payments", hook_secret)
    running = Portal(service, tuned, server.url, world, app, receiver)
    try:
        yield running
    finally:
        running.close()
        server.stop()
        vault.close()
        server.sock.close()
        receiver.server.stop()


def bearer(portal: Portal, email: str) -> dict[str, str]:
    token = portal.client().post("/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"authorization": f"Bearer {token.json()['access_token']}"}


# three directories that never fail, ask for no captcha and are never down
CALM = [
    d["slug"]
    for d in CATALOG
    if d["sandbox"] == {"error_rate": 0.0, "outage": None} and not d["captcha"]
][:3]


def directory_order(portal: Portal, **extra: Any) -> dict[str, Any]:
    """A directory-submission order over the CALM directories (no profile of its own: the
    tenant's intake)."""
    return {
        "adapter": "directory-submission",
        "input": {
            "plan": 50,
            "directories": CALM,
            "directories_url": portal.world.url("directories"),
            "poll_s": 0.2,
            **extra,
        },
    }


def paying_world(seed: int) -> Iterator[SandboxWorld]:
    """The sandbox a paid directory order needs (inbox, mail, the captcha solver at 0.1 s,
    the directories and localstripe), started and stopped around a fixture's `yield from`."""
    payments.load()  # slow to import on a loaded machine: not inside the start deadline
    specs = [
        *inbox.specs(),
        *mail.specs(),
        *captcha.specs(),
        *directories.specs(),
        *payments.specs(),
    ]
    w = SandboxWorld(specs, seed=seed)
    w.start(timeout=60)
    w.context("captcha-solver").options["solve_time_s"] = 0.1
    try:
        yield w
    finally:
        w.stop()


def billed_orders(
    settings: Settings, world: SandboxWorld, service_for: Callable[..., JobService]
) -> Iterator[Portal]:
    """`serve_orders` with billing through the stripe provider against the world's
    localstripe."""
    config = BillingConfig(
        provider="stripe",
        api_key=SecretStr(payments.SANDBOX_SECRET_KEY),
        api_base=world.url("payments"),
    )
    yield from serve_orders(settings, world, service_for, billing=config)
