"""Delivery fixtures: a runtime, its gateway on loopback, and a webhook receiver that can fail."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portwright.adapters import AdapterRegistry
from portwright.delivery import DeliveryParts, DeliveryPolicy
from portwright.gateway import create_app, issue_key
from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.settings import Settings
from portwright.testing import EchoAdapter
from tests.gateway._support import ServerThread

FAST = DeliveryPolicy(base_s=0.05, max_s=0.2, breaker_threshold=3, breaker_open_s=0.3)


@dataclass
class Receiver:
    """Records every webhook; answers with `plan` (status codes) first, then 200."""

    plan: list[int] = field(default_factory=list)
    retry_after: str | None = None
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: ServerThread | None = None

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            body = await request.body()
            self.received.append((dict(request.headers), body))
            code = self.plan.pop(0) if self.plan else 200
            headers = {"retry-after": self.retry_after} if self.retry_after and code != 200 else {}
            return JSONResponse({"ok": code == 200}, status_code=code, headers=headers)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/hook"


@dataclass
class Stack:
    service: JobService
    settings: Settings
    server: ServerThread
    receiver: Receiver
    echo_url: str
    delivery: DeliveryParts

    @property
    def base_url(self) -> str:
        return self.server.url

    def new_key(self) -> tuple[str, str]:
        issued = issue_key(self.service.store, tenant=f"t-{secrets.token_hex(4)}")
        return issued.key, issued.record.tenant_id


@pytest.fixture
def stack(settings: Settings, service_for: Callable[..., JobService]) -> Iterator[Stack]:
    """Runtime + gateway (fast delivery policy) + a receiver, all on loopback."""
    receiver = Receiver()
    receiver.server = ServerThread(receiver.app()).start()
    with SandboxWorld([echo_service()], seed=5) as world:
        allow = [
            receiver.server.url.removeprefix("http://"),
            world.url("echo").removeprefix("http://"),
        ]
        tuned = settings.model_copy(update={"url_allowlist": allow})
        registry = AdapterRegistry()
        registry.register(EchoAdapter)
        service = service_for(registry, settings=tuned)
        app = create_app(service, tuned, delivery_policy=FAST)
        server = ServerThread(app, tuned).start()
        try:
            yield Stack(service, tuned, server, receiver, world.url("echo"), app.state.delivery)
        finally:
            server.stop()
            receiver.server.stop()
