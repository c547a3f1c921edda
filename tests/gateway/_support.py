"""Shared pieces of the gateway tests: a uvicorn server thread, test adapters, a redirector."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from portwright.gateway import issue_key, server_config
from portwright.orchestrator import JobService, Runtime
from portwright.sandbox import ServiceContext, ServiceSpec
from portwright.sdk import Adapter, Job, StepContext, linear_machine
from portwright.settings import Settings
from portwright.store import Store

STRIPE_SECRET = "whsec_sandbox"
STRIPE_SECRET_NEXT = "whsec_rotated_next"
STANDARD_SECRET = "whsec_c2VjcmV0LWZvci10aGUtc3RhbmRhcmQtc291cmNl"
SHOPIFY_SECRET = "shpss_test_secret"


class ServerThread:
    """Serves an ASGI app with uvicorn on a loopback port in a background thread."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None) -> None:
        """With `settings`, served as `portwright api` serves it: with the request limits."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on"}
        if settings is None:
            config = uvicorn.Config(app, **options)
        else:
            config = server_config(app, settings, **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True, name="gateway-server")

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@dataclass
class Stack:
    """One engine's running gateway: its runtime, service, settings and URL."""

    engine: str
    runtime: Runtime
    service: JobService
    settings: Settings
    server: ServerThread
    urls: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def store(self) -> Store:
        return self.runtime.store

    def new_key(self, tenant: str, *, plan: str | None = None, admin: bool = False) -> str:
        scopes = "jobs admin" if admin else "jobs"
        return issue_key(self.store, tenant=tenant, scopes=scopes, plan=plan).key


# -- adapters the tests submit -----------------------------------------------------------


class WaitInput(BaseModel):
    timeout_s: float = 60.0


class PaymentWaiter(Adapter[WaitInput]):
    """A booking stand-in: waits for input "payment" and returns it."""

    name: ClassVar[str] = "booking-stub"
    input_model = WaitInput
    machine = linear_machine("booking-stub", ["PAYMENT_PENDING"])
    inputs: ClassVar[frozenset[str]] = frozenset({"payment", "otp"})
    max_concurrency = 200  # many tests leave one waiting; none may queue behind the others

    async def run(self, job: Job[WaitInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        value = await job.wait_for_input("payment", job.input.timeout_s, state="PAYMENT_PENDING")
        return {"payment": value}


class SecretInput(BaseModel):
    url: str
    credential: str


async def _login(sc: StepContext, url: str, credential: str) -> dict[str, Any]:
    secret = await sc.secret(credential)
    sc.log.info("logging in", credential=credential)
    response = await sc.http.get(url, params={"k": f"user-{len(secret)}"})
    return {"status": response.status_code, "secret_length": len(secret)}


class SecretUser(Adapter[SecretInput]):
    """Reads a vault credential inside a step (the way a login step does)."""

    name: ClassVar[str] = "secret-user"
    input_model = SecretInput
    machine = linear_machine("secret-user", ["LOGGING_IN"])

    async def run(self, job: Job[SecretInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("LOGGING_IN")
        result: dict[str, Any] = await job.step(
            "login", _login, job.input.url, job.input.credential
        )
        return result


# -- a sandbox service that redirects ----------------------------------------------------


def redirector_service(name: str = "redirector") -> ServiceSpec:
    """`/to?u=URL` answers 302 to URL; `/page` is a small product page."""

    def build(ctx: ServiceContext) -> Starlette:
        async def to(request: Request) -> Response:
            return RedirectResponse(request.query_params["u"], status_code=302)

        async def page(request: Request) -> Response:
            html = (
                "<html><head><title>Redirected</title></head><body>"
                '<h1 class="title">Kettle</h1><span class="price" data-amount="12">12</span>'
                "</body></html>"
            )
            return Response(html, media_type="text/html")

        return Starlette(routes=[Route("/to", to), Route("/page", page)])

    return ServiceSpec(name, build)


def new_tenant_name(prefix: str = "t") -> str:
    import secrets

    return f"{prefix}-{secrets.token_hex(4)}"


def clear_of_window_edge(window_s: float = 60.0, margin_s: float = 10.0) -> None:
    """Wait, if need be, until the next `margin_s` seconds hold no rate-limit window edge.

    The limiter's sliding-window counter weights the previous window by the share of it still
    in view, and windows are aligned to multiples of their length since the epoch: a burst
    that straddles an edge is counted as slightly under its size, so the request one past the
    limit can pass there. A test that expects the exact request to be refused starts its burst
    clear of the edge (at most `margin_s` of waiting, one time in `window_s / margin_s`).
    """
    left = window_s - (time.time() % window_s)
    if left < margin_s:
        time.sleep(left + 0.05)
