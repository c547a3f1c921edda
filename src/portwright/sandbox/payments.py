"""The sandbox payment provider: localstripe (PyPI), a stateful fake of Stripe's API, served
on loopback like any sandbox service. Billing's `StripeProvider` talks to it with the
official `stripe` library exactly as to Stripe (`billing.api_base` = this URL, any `sk_…`
key), and the checkout page loads localstripe's stand-in for Stripe.js from
`<url>/js.stripe.com/v3/`.

    http://127.0.0.1:<port>    what `PORTWRIGHT_BILLING__API_BASE` points at

Webhooks: `register_webhook(world, url, secret)` makes localstripe sign its events
(`Stripe-Signature`, HMAC-SHA256 over `t.body`) and POST them to the gateway's
`/v1/hooks/<source>`. localstripe sends each event about one second after it happens.

Limits of the fake (1.15.x), as found: no Checkout Sessions and no prices API (plans only:
billing uses SetupIntents and plans, which Stripe serves too); proration on a plan change is
its own simple rule (the new plan's full price less the old invoice's amount as "Unused
time", not time-weighted like Stripe's); no test clocks (a renewal is simulated by invoicing
the subscription). Its state is one per process (a module-level store): several worlds in
one process share it, so ids are never reused and each test makes its own customers. It is
kept in memory only (localstripe would otherwise pickle it to /tmp on every write).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import httpx

from portwright.sandbox._world import SandboxWorld, ServiceContext, ServiceSpec

__all__ = ["SANDBOX_SECRET_KEY", "load", "register_webhook", "specs"]

SANDBOX_SECRET_KEY = "sk_test_portwright_sandbox"  # localstripe accepts any sk_… key
log = logging.getLogger(__name__)


def load() -> tuple[Any, Any]:
    """localstripe's modules (resources, server); importing them takes a while on a busy
    machine, so a caller may do it before starting a world."""
    with warnings.catch_warnings():  # its routes are plain functions, which aiohttp deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        from localstripe import resources, server  # type: ignore[import-untyped]
    return resources, server


async def build_localstripe(ctx: ServiceContext) -> Any:
    """localstripe's aiohttp app, as a protocol factory for the world's socket."""
    from aiohttp import web

    resources, server = load()

    # In memory only: no pickle in /tmp shared by every process on the machine.
    resources.store.dump_to_disk = lambda: None
    # localstripe's module-level app binds to the first loop that serves it: each world
    # serves a fresh app with the same routes, middlewares and CORS hook.
    app = web.Application(middlewares=list(server.app.middlewares))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for route in server.app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = str(info.get("path") or info.get("formatter"))
            app.router.add_route(route.method, path, route.handler)
    for hook in server.app.on_response_prepare:
        app.on_response_prepare.append(hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx.options["runner"] = runner
    assert runner.server is not None
    return runner.server


def register_webhook(
    world: SandboxWorld, url: str, secret: str, *, events: list[str] | None = None
) -> None:
    """Make the world's localstripe sign and send its events to `url` (replaces an earlier
    registration of this process: the fake's webhooks are per process)."""
    body: dict[str, Any] = {"url": url, "secret": secret}
    if events is not None:
        body["events"] = events
    answer = httpx.post(world.url("payments") + "/_config/webhooks/portwright", json=body)
    answer.raise_for_status()


def specs() -> list[ServiceSpec]:
    """The localstripe service, named "payments"."""
    return [ServiceSpec("payments", build_localstripe, kind="protocol", chaos_wrapped=False)]
