"""A customer-side stack for directory orders: a runtime with the directories adapters and a
captcha solver, its gateway with the portal, and a sandbox world with the inbox (email over
SMTP, SMS, the bot and chat-webhook stand-ins), the directories and the captcha service; on
SQLite and PostgreSQL (the `settings` fixture)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import SecretStr

from portwright.apps.directories import DirectoryFormAdapter, DirectorySubmissionAdapter
from portwright.gateway import create_app
from portwright.orchestrator import JobService
from portwright.resources import TwoCaptchaSolver
from portwright.resources.vault import Vault
from portwright.sandbox import SandboxWorld
from portwright.settings import Settings
from portwright.testing import EchoAdapter
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
    **runtime: Any,
) -> Iterator[Portal]:
    server = ServerThread(None)  # type: ignore[arg-type]  # the app comes once its URL is known
    receiver = Receiver()
    receiver.server = ServerThread(receiver.app()).start()
    reach = reaching(settings, world)
    tuned = reach.model_copy(
        update={
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
        server.sock.close()
        receiver.server.stop()


def bearer(portal: Portal, email: str) -> dict[str, str]:
    token = portal.client().post("/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"authorization": f"Bearer {token.json()['access_token']}"}
