"""The sandbox as a world plugin: entry point `sandbox` of the `portwright.worlds` group.

The core (`portwright up`, `portwright sandbox`, the one-process stack) never imports the
sandbox; it loads this module through `portwright.plugins.load_plugin(WORLDS, "sandbox")`
and uses what is listed here:

- `SandboxWorld`, `default_services()`, `ChaosKnobs`: the world to start;
- `settings_for(settings, world)`: settings that let the platform reach its loopback
  ports (SSRF allowlist) and trust its webhook sources, with secrets drawn for the data
  dir on first start (and given to the world's senders), and that configure its proxies
  and captcha services as resources (where the settings name none of their own);
- `connect(world, gateway_url)`: the world's webhooks (consulate payments, shop orders)
  go to that gateway;
- `proxy_catalog(world)`: its forward proxies, by tier;
- `world_toml(world)`: its resources as a `portwright.toml` (`portwright sandbox --write-config`).
"""

from __future__ import annotations

from secrets import token_urlsafe
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from portwright.sandbox import ChaosKnobs, SandboxWorld, default_services
from portwright.sandbox.config import world_config, world_toml
from portwright.sandbox.payments import SANDBOX_SECRET_KEY, register_webhook
from portwright.sandbox.proxies import proxy_catalog
from portwright.sandbox.webhooks import (
    SANDBOX_SECRETS_FILE,
    sandbox_webhook_secrets,
    sandbox_webhook_sources,
)
from portwright.settings import WebhookSource

if TYPE_CHECKING:
    from portwright.settings import Settings

__all__ = [
    "SANDBOX_SECRETS_FILE",
    "SHOP_TENANTS",
    "ChaosKnobs",
    "SandboxWorld",
    "connect",
    "default_services",
    "proxy_catalog",
    "sandbox_webhook_secrets",
    "sandbox_webhook_sources",
    "settings_for",
    "world_toml",
]

SHOP_TENANTS = {"shop-alpha": "acme", "shop-beta": "globex"}  # scenario 5: whose orders
PAYMENTS_SOURCE = "payments"  # localstripe's signed events: /v1/hooks/payments


def secrets_of_payments(world: SandboxWorld) -> str:
    """The world's localstripe webhook secret, drawn once per world."""
    options = world.context("payments").options
    if "webhook_secret" not in options:
        options["webhook_secret"] = "whsec_" + token_urlsafe(24)
    return str(options["webhook_secret"])


def _secrets_for(settings: Settings, world: SandboxWorld) -> dict[str, str]:
    """This data dir's sandbox webhook secrets, also given to the world's senders (the
    consulate's payment webhooks, the shops' order webhooks): nothing trusts a secret
    written in the source."""
    secrets = sandbox_webhook_secrets(settings.data_dir)
    names = set(world.names())
    if "consulate" in names:
        world.context("consulate").options["payment_webhook_secret"] = secrets["consulate"]
    for shop in ("shop-alpha", "shop-beta"):
        if shop in names:
            world.context(shop).options["secret"] = secrets[shop]
    return secrets


def settings_for(settings: Settings, world: SandboxWorld) -> Settings:
    """Settings that let the platform reach (and trust) this sandbox world, and use its
    proxies and captcha services as configured resources (`portwright.sandbox.config`)
    wherever the settings configure none of their own."""
    ports = sorted({url.rsplit(":", 1)[1] for url in world.urls().values()})
    allow = [*settings.url_allowlist, *(f"127.0.0.1:{port}" for port in ports)]
    shops = dict(sandbox_webhook_sources(_secrets_for(settings, world)))
    for name, tenant in SHOP_TENANTS.items():  # shop orders go to dispatch (scenario 5)
        shops[name] = shops[name].model_copy(update={"handler": "shop-order", "tenant": tenant})
    sources = {**shops, **settings.webhook_sources}
    update: dict[str, Any] = {"url_allowlist": allow, "webhook_sources": sources}
    resources = world_config(world)  # its proxies and captcha services, as configured resources
    if "proxies" in resources and not settings.proxies.configured:
        update["proxies"] = resources["proxies"]
    if "captcha" in resources and not settings.captcha_providers():
        update["captcha"] = {**settings.captcha.model_dump(), **resources["captcha"]}
    names = set(world.names())  # customers' email and SMS go to the world's inbox
    if "smtp" in names and not settings.smtp_url:
        update["smtp_url"] = world.url("smtp")
    if "inbox" in names and not settings.sms_url:
        update["sms_url"] = world.url("inbox") + "/sms"
    if "idp" in names and not settings.oidc:  # "Sign in with Sandbox ID" on /app/login
        update["oidc"] = {"sandbox": sandbox_oidc(world)}
    if "payments" in names and settings.billing.provider == "none":  # billing on localstripe
        secret = secrets_of_payments(world)
        update["billing"] = {
            **settings.billing.model_dump(),
            "provider": "stripe",
            "api_key": SANDBOX_SECRET_KEY,
            "api_base": world.url("payments"),
        }
        sources[PAYMENTS_SOURCE] = WebhookSource(
            scheme="stripe", secrets=[SecretStr(secret)], handler="billing"
        )
    if "inbox" in names and not settings.bot_api_url:  # the bot API stand-in
        update["bot_api_url"] = world.url("inbox")
        update["bot_token"] = settings.bot_token or "sandbox-bot"
    if "inbox" in names and not settings.staff_chat_webhook_url:  # staff alerts: room "staff"
        update["staff_chat_webhook_url"] = world.url("inbox") + "/chat/staff"
    # validated like a file's values: the world is one configuration among others
    return type(settings).model_validate({**settings.model_dump(), **update})


def sandbox_oidc(world: SandboxWorld) -> dict[str, Any]:
    """The sandbox identity provider as the portal's `oidc` provider "sandbox"."""
    from portwright.sandbox.idp import CLIENT_ID, CLIENT_SECRET

    return {
        "issuer": world.url("idp"),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "label": "Sandbox ID",
    }


def connect(world: SandboxWorld, gateway_url: str) -> None:
    """The world's webhooks go to the gateway at `gateway_url`; the sandbox identity
    provider knows the portal's callback there."""
    if "idp" in world.names():
        from portwright.sandbox.idp import CLIENT_ID, CLIENT_SECRET

        callback = f"{gateway_url}/app/login/oidc/sandbox/callback"
        world.context("idp").options["clients"] = {
            CLIENT_ID: {"secret": CLIENT_SECRET, "redirect_uris": [callback]}
        }
    if "consulate" in world.names():
        world.context("consulate").options["payment_webhook_url"] = (
            f"{gateway_url}/v1/hooks/consulate"
        )
    if "payments" in world.names():
        register_webhook(
            world, f"{gateway_url}/v1/hooks/{PAYMENTS_SOURCE}", secrets_of_payments(world)
        )
    for shop in SHOP_TENANTS:
        if shop in world.names():
            world.context(shop).options["target_url"] = f"{gateway_url}/v1/hooks/{shop}"
