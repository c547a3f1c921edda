"""The gateway: Portwright's public HTTP API. Nothing reaches the orchestrator raw.

Contract (what `portwright up` and `portwright api` use)::

    from portwright.gateway import create_app
    from portwright.resources.vault import Vault

    vault = Vault.from_settings(settings)            # a SecretsProvider
    runtime = Runtime(settings, registry, secrets=vault).start()
    app = create_app(JobService(runtime), settings)  # a FastAPI app; serve it with uvicorn

- `create_app(service, settings)` needs a started runtime. Its lifespan runs
  the webhook inbox processor (and purges expired idempotency keys), so serve
  it with lifespan on (uvicorn's default).
- `Vault.from_settings(settings)` implements `portwright.resources.SecretsProvider`
  (`get(tenant_id, name) -> str`): per-tenant credentials under envelope
  encryption (AES-GCM data key per tenant, wrapped by `PORTWRIGHT_MASTER_KEY`,
  or by `<data_dir>/master.key`, generated on first use). It opens its own
  small connection pool lazily, so it can be built before the runtime starts.
- Webhook sources come from `settings.webhook_sources`; a source's `handler` names the
  processing: "record" (built in) or an installed app's (`portwright.webhook_handlers`
  entry points, e.g. the consulate's "payment", dispatch's "shop-order"). The sandbox
  world adds its own sources (`portwright.sandbox.webhooks`) when `up` starts it.
- SSRF: user URLs may reach public addresses only, plus `settings.url_allowlist`
  (the sandbox's loopback ports must be listed there); `UrlGuard` and
  `guarded_client` are the same check for code that fetches user URLs.
- Serve it with `uvicorn.Server(server_config(app, settings, host=…, port=…))`: uvicorn
  with the request-head limits in settings (431 for too many or too large headers, 408
  for a head or body that does not arrive in time).

The vault lives in `portwright.resources.vault` (the runtime's secrets provider); the
gateway re-exports the SSRF guard's names from `portwright.resources.ssrf`.

Layout: `auth/` (API keys), `ratelimit/`, `idempotency/`, `kernel` (for other routers),
`webhooks/` (schemes, inbox, processor), `routes/` (one module per resource).
"""

from portwright.gateway._app import create_app
from portwright.gateway._plans import (
    PLANS,
    TIER_CREDITS,
    Plan,
    PlanLimit,
    current_period,
    installed_plan_limits,
    plan_of,
)
from portwright.gateway._principal import Principal
from portwright.gateway._server import ServerLimits, server_config
from portwright.gateway.auth import IssuedKey, issue_key
from portwright.gateway.ratelimit import RateLimiter
from portwright.gateway.webhooks import (
    DEFAULT_HANDLERS,
    PermanentWebhookError,
    WebhookHandler,
)
from portwright.resources.ssrf import StaticResolver, UrlGuard, UrlRefusedError, guarded_client

__all__ = [
    "DEFAULT_HANDLERS",
    "PLANS",
    "TIER_CREDITS",
    "IssuedKey",
    "PermanentWebhookError",
    "Plan",
    "PlanLimit",
    "Principal",
    "RateLimiter",
    "ServerLimits",
    "StaticResolver",
    "UrlGuard",
    "UrlRefusedError",
    "WebhookHandler",
    "create_app",
    "current_period",
    "guarded_client",
    "installed_plan_limits",
    "issue_key",
    "plan_of",
    "server_config",
]
