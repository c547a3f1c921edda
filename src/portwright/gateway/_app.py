"""`create_app(service, settings)`: the public API as one FastAPI app.

Middleware, outermost first: tracing (when on) → request id (`X-Request-ID`, bound to the
logs; an unhandled error is logged and answered as a JSON 500) → body limit (413, 408 slow) →
database unavailable (503 from the middlewares below) → authentication (401, 429 on
repeated failures) → rate limits per key and route
(429) → idempotency keys → the routes. The lifespan runs the webhook inbox processor and purges
expired idempotency keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from portwright import __version__
from portwright.console import mount_console
from portwright.gateway._bodylimit import BodyLimitMiddleware
from portwright.gateway._context import GatewayContext
from portwright.gateway._errors import UnavailableMiddleware, install_error_handlers
from portwright.gateway._plans import Meter
from portwright.gateway.auth import AuthMiddleware
from portwright.gateway.idempotency import IdempotencyMiddleware
from portwright.gateway.ratelimit import RateLimiter, RateLimitMiddleware
from portwright.gateway.routes import (
    account_router,
    escalations_router,
    evidence_router,
    items_router,
    jobs_router,
    portals_router,
    results_router,
    rollouts_router,
    scrape_router,
)
from portwright.gateway.webhooks import (
    InboxProcessor,
    WebhookHandler,
    installed_handlers,
    mount_hooks,
)
from portwright.observability import RequestContextMiddleware, install_tracing
from portwright.orchestrator import JobService
from portwright.plugins import ROUTERS, load_plugins
from portwright.resources.ssrf import UrlGuard, guarded_client
from portwright.resources.vault import Vault
from portwright.settings import Settings

if TYPE_CHECKING:
    from portwright.billing import Billing, BillingSweeper
    from portwright.delivery import DeliveryPolicy
    from portwright.notifications import Channel, Notifier
    from portwright.store import Store
    from portwright.webauth import AccessTokens

__all__ = ["create_app"]

# /console and /app have their own session-cookie auth (portwright.console, .customers);
# the token route takes an email and password.
PUBLIC_PATHS = (
    "/favicon.ico",  # browsers ask every origin: not a failed login (it is a 404)
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/v1/hooks/",
    "/v1/results/",  # signed, expiring links: the signature is the authorization
    "/console",
    "/console/",
    "/app",
    "/app/",
    "/v1/auth/token",
)
SENSITIVE_ROUTES = ("/v1/jobs/{job_id}/input",)
PURGE_EVERY_S = 600.0


def create_app(
    service: JobService,
    settings: Settings,
    *,
    guard: UrlGuard | None = None,
    vault: Vault | None = None,
    limiter: RateLimiter | None = None,
    handlers: Mapping[str, WebhookHandler] | None = None,
    delivery_policy: DeliveryPolicy | None = None,
    channels: Mapping[str, Channel] | None = None,
    billing: Billing | None = None,
) -> FastAPI:
    """The gateway for a started runtime's `service`. Optional parts default from `settings`:
    the SSRF guard (`url_allowlist`), the vault (`master_key`), the rate limiter
    (`redis_url`) and the webhook handlers (the built-in and the installed apps', from
    the `portwright.webhook_handlers` entry points). Installed apps' routes come from the
    `portwright.routers` entry points. `channels` reach customers (default: the email and
    SMS channels the settings configure)."""
    store = service.store
    guard = guard or UrlGuard.from_allowlist(settings.url_allowlist)
    vault = vault or Vault.from_settings(settings, store=store)
    own_limiter = limiter is None
    limiter = limiter or RateLimiter(settings.redis_url)
    ctx = GatewayContext(service, settings, guard, Meter(store), vault)
    sources = settings.webhook_sources
    tenant_ids = {
        name: (store.tenants.ensure(src.tenant).id if src.tenant else None)
        for name, src in sources.items()
    }
    routers = load_plugins(ROUTERS)  # before anything starts: a broken plugin fails here
    billing, billing_handlers, sweeper = _billing_parts(store, settings, billing)
    processor = InboxProcessor(
        service,
        {**installed_handlers(store), **billing_handlers, **(handlers or {})},
        {name: src.handler for name, src in sources.items()},
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="gateway")
        loop.set_default_executor(executor)
        processor.start()
        await delivery.start()
        await customers.start()
        if sweeper is not None:
            sweeper.start()
        purger = loop.create_task(_purge_forever(service))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await processor.stop()
            await delivery.stop()
            await customers.stop()
            if sweeper is not None:
                await sweeper.stop()
            if own_limiter:
                await limiter.aclose()

    app = FastAPI(
        # Our own spans (observability.install_tracing, off unless configured): FastAPI's
        # native telemetry would add a second server span and probes on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="Portwright",
        version=__version__,
        description="Durable automation jobs against web portals: the public API.",
        lifespan=lifespan,
    )
    app.state.processor = processor
    app.state.context = ctx
    install_error_handlers(app)
    _include_routes(app, ctx)
    mount_hooks(
        app,
        store,
        sources,
        processor,
        tolerance_s=settings.webhook_tolerance_s,
        tenant_ids=tenant_ids,
    )
    mount_console(app, service, settings, vault=vault)
    from portwright.customers import mount_customers  # it builds on the gateway's kernel

    customers = mount_customers(
        app,
        service,
        settings,
        vault=vault,
        channels=None if channels is None else dict(channels),
        billing=billing,
    )
    _mount_billing(app, billing, customers.notifier)
    # Delivery and observability (lazy import: they build on the gateway's pieces).
    from portwright.delivery import mount_delivery, sinks_from

    delivery = mount_delivery(
        app,
        store,
        check_url=ctx.check_url,
        client=guarded_client(guard, timeout=10.0, max_redirects=0),
        policy=delivery_policy,
        live_after_s=settings.dead_worker_after_s,
        sinks=sinks_from(settings),
        sealer=vault,
    )
    _mount_routers(app, routers, store, delivery, vault)
    _install_middleware(app, settings, store, limiter, customers.tokens)
    return app


def _billing_parts(
    store: Store, settings: Settings, billing: Billing | None
) -> tuple[Billing | None, dict[str, WebhookHandler], BillingSweeper | None]:
    """Billing as configured (or as given), its webhook handler "billing" and its sweeper."""
    from portwright.billing import (  # it builds on the gateway's kernel
        BillingHandler,
        BillingSweeper,
        billing_from,
    )

    if billing is None:
        billing = billing_from(store, settings.billing, public_url=settings.links_base)
    if billing is None:
        return None, {}, None
    sweeper = BillingSweeper(billing, settings.billing.sweep_every_s)
    return billing, {"billing": BillingHandler(billing)}, sweeper


def _mount_billing(app: FastAPI, billing: Billing | None, notifier: Notifier) -> None:
    """`/v1/billing`; billing's `payment_failed` goes to the tenant's owners."""
    app.state.billing = billing
    if billing is None:
        return
    from portwright.billing import billing_router

    def notify(tenant_id: str, event: str, context: dict[str, object]) -> object:
        return notifier.notify_tenant(tenant_id, event, context, roles={"owner"})

    billing.notify = notify
    app.include_router(billing_router(billing))


def _mount_routers(
    app: FastAPI, routers: Mapping[str, Any], store: Store, delivery: Any, vault: Vault
) -> None:
    """The apps' routes (`portwright.routers`, e.g. dispatch's drivers); they find a signing
    key of their own through `webauth.app_key`."""
    app.state.derived_key = vault.derived_key
    for mount in routers.values():
        mount(app, store, delivery)


def _include_routes(app: FastAPI, ctx: GatewayContext) -> None:
    """The public API's own routes (`/v1/...`)."""
    for router in (
        jobs_router,
        evidence_router,
        items_router,
        scrape_router,
        portals_router,
        rollouts_router,
        account_router,
        escalations_router,
        results_router,
    ):
        app.include_router(router(ctx))


def _install_middleware(
    app: FastAPI, settings: Settings, store: Store, limiter: RateLimiter, tokens: AccessTokens
) -> None:
    from portwright.delivery import PUBLIC_PATHS as DELIVERY_PUBLIC_PATHS

    # add_middleware wraps: the last added runs first.
    app.add_middleware(IdempotencyMiddleware, store=store)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=limiter,
        default=settings.rate_limit_default,
        write=settings.rate_limit_write,
        sensitive=settings.rate_limit_sensitive,
        sensitive_routes=SENSITIVE_ROUTES,
    )
    app.add_middleware(
        AuthMiddleware,
        store=store,
        limiter=limiter,
        failure_limit=settings.rate_limit_auth_failures,
        cache_s=settings.api_key_cache_s,
        public=(*PUBLIC_PATHS, *DELIVERY_PUBLIC_PATHS),
        tokens=tokens,
    )
    # The database unreachable in the three above: 503 + Retry-After, as in a route.
    app.add_middleware(UnavailableMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.request_body_timeout_s,
    )
    app.add_middleware(RequestContextMiddleware)
    install_tracing(app, settings)  # when on: outermost, so a 401 or a 413 has a span too


async def _purge_forever(service: JobService) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY_S)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(service.store.idempotency.purge_expired)
