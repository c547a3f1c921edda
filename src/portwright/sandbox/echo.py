"""A tiny sandbox portal for testing the layers above the adapter seam.

`echo_service()` is a sandbox service whose page at `/?k=KEY` records a hit in its
ledger; `portwright.testing.EchoAdapter` fetches it through a checkpointed step.
Together they exercise retries, cooldowns, escalations and crashes without a real portal.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from portwright.sandbox._world import ServiceContext, ServiceSpec

__all__ = ["echo_service"]


def echo_service(name: str = "echo") -> ServiceSpec:
    """A page `<p class="v">hello KEY</p>`; option `markup_class` changes the markup."""

    def build(ctx: ServiceContext) -> Starlette:
        async def page(request: Request) -> HTMLResponse:
            key = request.query_params.get("k", "")
            ctx.ledger.record("hit", key, "client", step=request.query_params.get("s", ""))
            css = ctx.options.get("markup_class", "v")
            return HTMLResponse(f'<html><body><p class="{css}">hello {key}</p></body></html>')

        return Starlette(routes=[Route("/", page)])

    return ServiceSpec(name, build)
