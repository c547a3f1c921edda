"""The customer side as the gateway mounts it: the portal at `/app`, the token route, the
access-token checker, and the notification sender that runs in the gateway's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from portwright.customers._accounts import Accounts
from portwright.customers._api import token_router
from portwright.customers._auth import (
    Customer,
    CustomerSessions,
    ForbiddenError,
    LoginRequiredError,
)
from portwright.customers._billing_pages import billing_pages
from portwright.customers._intake import Intakes
from portwright.customers._intake_api import intake_router
from portwright.customers._more_pages import more_pages_router
from portwright.customers._oidc import OidcSignIn, oidc_router
from portwright.customers._pages import pages_router
from portwright.customers._render import PREFIX, page
from portwright.customers._session import session_router
from portwright.notifications import Channel, NotificationSender, Notifier, channels_from
from portwright.orchestrator import ConflictError, JobService
from portwright.settings import Settings
from portwright.webauth import AccessTokens, LoginLimiter

if TYPE_CHECKING:
    from portwright.billing import Billing
    from portwright.resources.vault import Vault

__all__ = ["CustomerSide", "access_tokens", "mount_customers"]

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def access_tokens(vault: Vault) -> AccessTokens:
    """The access-token signer of an installation: its key derives from the master key."""
    return AccessTokens(vault.derived_key("access-tokens"))


@dataclass
class CustomerSide:
    """What `mount_customers` built: the portal app and the services behind it."""

    app: FastAPI
    accounts: Accounts
    notifier: Notifier
    sender: NotificationSender
    tokens: AccessTokens

    async def start(self) -> None:
        self.sender.start()

    async def stop(self) -> None:
        await self.sender.stop()


def portal_app(
    service: JobService,
    accounts: Accounts,
    vault: Vault,
    settings: Settings,
    sender: NotificationSender,
    billing: Billing | None = None,
) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.billing_on = billing is not None
    app.state.sessions = CustomerSessions(service.store)
    app.state.login_limiter = LoginLimiter()
    app.state.signup_limiter = LoginLimiter(limit=20, window_s=3600.0)
    app.state.poke = sender.poke
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(session_router(accounts, signup_open=settings.customer_signup))
    sign_ins = {
        name: OidcSignIn(name, provider, vault.derived_key(f"oidc-state:{name}"))
        for name, provider in settings.oidc.items()
    }
    app.state.oidc_buttons = [(name, s.label) for name, s in sign_ins.items()]
    app.include_router(oidc_router(accounts, sign_ins, settings.public_url))
    app.include_router(pages_router(service, accounts, vault))
    if billing is not None:
        app.include_router(billing_pages(billing, Intakes(service)))
    app.include_router(more_pages_router(service, vault, settings, Intakes(service)))

    @app.exception_handler(LoginRequiredError)
    async def _login(request: Request, exc: LoginRequiredError) -> Response:
        if request.method in ("GET", "HEAD") and request.url.path != PREFIX + "/live":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
        return page(request, "error.html", None, status_code=401, message="Sign in first.")

    async def _who(request: Request) -> Customer | None:
        try:
            return await app.state.sessions.current(request)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - an error page must render whatever failed
            return None

    @app.exception_handler(ForbiddenError)
    async def _forbidden(request: Request, exc: ForbiddenError) -> Response:
        return page(
            request,
            "error.html",
            await _who(request),
            status_code=403,
            message=f"Not allowed: {exc}",
        )

    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, exc: ConflictError) -> Response:
        return page(request, "error.html", await _who(request), status_code=409, message=str(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return page(
            request,
            "error.html",
            await _who(request),
            status_code=exc.status_code,
            message=str(exc.detail),
        )

    async def _unavailable(request: Request, exc: Exception) -> Response:
        response = page(
            request,
            "error.html",
            None,
            status_code=503,
            message="The service is briefly unavailable: nothing was changed. "
            "Try again in a few seconds.",
        )
        response.headers["retry-after"] = "5"
        return response

    for unavailable in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.add_exception_handler(unavailable, _unavailable)

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


def mount_customers(
    app: FastAPI,
    service: JobService,
    settings: Settings,
    *,
    vault: Vault,
    channels: dict[str, Channel] | None = None,
    billing: Billing | None = None,
) -> CustomerSide:
    """Mount the portal at `/app` and `POST /v1/auth/token` on the gateway `app`.
    `channels` default to what the settings configure (`smtp_url`, `sms_url`)."""
    store = service.store
    chosen = channels_from(settings) if channels is None else channels
    notifier = Notifier(store, chosen)
    sender = NotificationSender(store, chosen)
    tokens = access_tokens(vault)
    accounts = Accounts(store, notifier, tokens, public_url=settings.links_base)
    portal = portal_app(service, accounts, vault, settings, sender, billing)
    app.include_router(token_router(accounts, LoginLimiter()))
    app.include_router(intake_router(Intakes(service)))
    app.mount(PREFIX, portal)
    app.add_api_route(
        PREFIX, lambda: RedirectResponse(PREFIX + "/", status_code=307), include_in_schema=False
    )
    return CustomerSide(portal, accounts, notifier, sender, tokens)
