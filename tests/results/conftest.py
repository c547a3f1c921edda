"""Results fixtures: a runtime with the scrape adapter, its gateway on loopback, a page
server to scrape (small and large pages, a missing one) and a webhook receiver."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.delivery import DeliveryPolicy
from portwright.gateway import UrlGuard, create_app, issue_key
from portwright.orchestrator import JobService
from portwright.settings import Settings
from tests.gateway._support import ServerThread

FAST = DeliveryPolicy(base_s=0.05, max_s=0.2, breaker_threshold=50, breaker_open_s=0.3)
INLINE = 2048  # result_inline_bytes in these tests
BIG_HTML = (
    "<html><head><title>Big</title></head><body>"
    + "".join(f'<p class="row">row {i} of the big page</p>' for i in range(400))
    + "</body></html>"
)


def pages_app() -> Starlette:
    """`/page/{n}`: a small product page; `/big`: a page over the inline limit; `/gone`: 404."""

    async def page(request: Request) -> Response:
        n = request.path_params["n"]
        return HTMLResponse(
            f'<html><head><title>P{n}</title></head><body><h1 class="name">Item {n}</h1>'
            "</body></html>"
        )

    async def big(request: Request) -> Response:
        return HTMLResponse(BIG_HTML)

    async def gone(request: Request) -> Response:
        return HTMLResponse("no such page", status_code=404)

    async def robots(request: Request) -> Response:
        return Response("User-agent: *\nAllow: /\n", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/page/{n:int}", page),
            Route("/big", big),
            Route("/gone", gone),
            Route("/robots.txt", robots),
        ]
    )


@dataclass
class Receiver:
    """Records every webhook it is sent; answers 200."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: ServerThread | None = None

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            self.received.append((dict(request.headers), await request.body()))
            return JSONResponse({"ok": True})

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
    pages_url: str
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.url

    def tenant(self, *, plan: str = "business") -> tuple[httpx.Client, str]:
        """A new tenant's API client and tenant id."""
        issued = issue_key(self.service.store, tenant=f"t-{secrets.token_hex(4)}", plan=plan)
        client = httpx.Client(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {issued.key}"},
            timeout=60,
        )
        self.clients.append(client)
        return client, issued.record.tenant_id

    def endpoint(self, client: httpx.Client) -> str:
        """Register the receiver as the tenant's webhook endpoint for results only (not the
        jobs' lifecycle events); its signing secret."""
        topics = ["job.result", "batch.completed"]
        reply = client.post(
            "/v1/webhook-endpoints", json={"url": self.receiver.url, "topics": topics}
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["secret"])


def results_settings(settings: Settings, allow: list[str], **extra: Any) -> Settings:
    update: dict[str, Any] = {
        "url_allowlist": allow,
        "master_key": SecretStr("results-test-master-key-" + "x" * 32),
        "result_inline_bytes": INLINE,
        "max_body_bytes": 1_048_576,
        "rate_limit_default": "100000/minute",
        "rate_limit_write": "100000/minute",
        **extra,
    }
    return settings.model_copy(update=update)


@pytest.fixture
def make_stack(
    settings: Settings, service_for: Callable[..., JobService]
) -> Iterator[Callable[..., Stack]]:
    """Builds the stack (once per test) with extra settings; stopped at teardown."""
    servers: list[ServerThread] = []
    stacks: list[Stack] = []

    def make(*adapters: Any, **extra: Any) -> Stack:
        receiver = Receiver()
        receiver.server = ServerThread(receiver.app()).start()
        pages = ServerThread(pages_app()).start()
        servers.extend([receiver.server, pages])
        allow = [s.url.removeprefix("http://") for s in (receiver.server, pages)]
        tuned = results_settings(settings, allow, **extra)
        registry = AdapterRegistry()
        guard = UrlGuard.from_allowlist(tuned.url_allowlist)
        registry.register(ScrapeAdapter.with_guard(guard, inline_bytes=INLINE))
        for adapter in adapters:
            registry.register(adapter)
        service = service_for(registry, settings=tuned)
        app = create_app(service, tuned, delivery_policy=FAST)
        server = ServerThread(app, tuned).start()
        servers.insert(0, server)
        stacks.append(Stack(service, tuned, server, receiver, pages.url))
        return stacks[-1]

    yield make
    for made in stacks:
        for client in made.clients:
            client.close()
    for server in servers:
        server.stop()


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()
