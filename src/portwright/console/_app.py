"""The console as one sub-application, mounted by the gateway at `/console`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from portwright.console._auth import (
    ForbiddenError,
    LoginLimiter,
    LoginRequiredError,
    Operator,
    Sessions,
)
from portwright.console._browser_live import browser_live_router
from portwright.console._credentials import credentials_router
from portwright.console._dead_letters import dead_letters_router
from portwright.console._escalations import escalations_router
from portwright.console._intel import intel_router
from portwright.console._live import live_router
from portwright.console._pages import pages_router
from portwright.console._panels import ConsolePanel, installed_panels, panels_router
from portwright.console._portals import portals_router
from portwright.console._render import PREFIX, display_zone, page
from portwright.console._rollouts import rollouts_router
from portwright.console._session import session_router
from portwright.orchestrator import ConflictError, JobService
from portwright.settings import Settings

if TYPE_CHECKING:
    from portwright.resources.vault import Vault

__all__ = ["console_app", "mount_console"]

SECURITY_HEADERS = {
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def console_app(
    service: JobService,
    settings: Settings,
    *,
    vault: Vault | None = None,
    panels: Sequence[ConsolePanel] | None = None,
) -> FastAPI:
    """The operator console for a started runtime's `service` (served under `/console`);
    `vault` opens stored credentials (default: the vault of `settings`' master key);
    `panels` are the apps' pages (default: the installed `portwright.console_panels`)."""
    if vault is None:
        from portwright.resources.vault import Vault  # the gateway imports the console

        vault = Vault.from_settings(settings, store=service.store)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.state.sessions = Sessions(service.store)
    app.state.login_limiter = LoginLimiter()
    app.state.vault = vault
    app.state.display_tz = display_zone(settings.display_timezone)
    app.state.panels = list(installed_panels() if panels is None else panels)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(session_router())
    app.include_router(live_router(service.store))
    app.include_router(pages_router(service))
    app.include_router(portals_router(service))  # before the pause/resume route
    app.include_router(escalations_router(service))
    app.include_router(browser_live_router(service))
    app.include_router(dead_letters_router(service.store))
    app.include_router(credentials_router(service.store, vault))
    app.include_router(panels_router(service.store, app.state.panels))
    app.include_router(intel_router(service.store))
    app.include_router(rollouts_router(service))

    @app.exception_handler(LoginRequiredError)
    async def _login(request: Request, exc: LoginRequiredError) -> Response:
        if request.method in ("GET", "HEAD") and request.url.path != PREFIX + "/live":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
        return page(request, "error.html", None, status_code=401, message="Sign in first.")

    async def _who(request: Request) -> Operator | None:
        """The signed-in operator, so an error page keeps the navigation (None if unknown)."""
        try:
            return await app.state.sessions.current(request)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - an error page must render whatever failed
            return None

    @app.exception_handler(ForbiddenError)
    async def _forbidden(request: Request, exc: ForbiddenError) -> Response:
        return page(request, "error.html", await _who(request), status_code=403,
                    message=f"ForbiddenError: {exc}")  # fmt: skip

    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, exc: ConflictError) -> Response:
        return page(request, "error.html", await _who(request), status_code=409,
                    message=str(exc))  # fmt: skip

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return page(request, "error.html", await _who(request), status_code=exc.status_code,
                    message=str(exc.detail))  # fmt: skip

    async def _unavailable(request: Request, exc: Exception) -> Response:
        # The database unreachable: a page saying so, and when to retry (not a 500).
        response = page(request, "error.html", None, status_code=503,
                        message="The database is unavailable: nothing was changed. "
                                "Try again in a few seconds.")  # fmt: skip
        response.headers["retry-after"] = "5"
        return response

    for unavailable in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.add_exception_handler(unavailable, _unavailable)

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if "/evidence/" in request.url.path:
            # A sandboxed snapshot has an opaque origin: SAMEORIGIN would blank the frame;
            # framing is limited by the CSP's sandbox and the console's own pages instead.
            del response.headers["x-frame-options"]
        return response

    return app


def mount_console(
    app: FastAPI, service: JobService, settings: Settings, *, vault: Vault | None = None
) -> FastAPI:
    """Mount the console on the gateway `app` at `/console`; returns the console app."""
    console = console_app(service, settings, vault=vault)
    app.mount(PREFIX, console)
    app.add_api_route(
        PREFIX, lambda: RedirectResponse(PREFIX + "/", status_code=307), include_in_schema=False
    )
    return console
