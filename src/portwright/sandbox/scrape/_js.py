"""`scrape-js`: pages whose content exists only after their script ran.

`/product/{id}` and `/catalog?page=N` are shells (`#app[data-state=loading]`,
no product data); `/static/app.js` fetches `/api/product/{id}` or
`/api/catalog?page=N` and renders the static site's markup into `#app`, then
sets `data-state="ready"`. Option `render_delay_ms` delays the rendering.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from portwright.sandbox._world import ServiceContext, ServiceSpec
from portwright.sandbox.scrape._catalog import Catalog
from portwright.sandbox.scrape._content import page_number, page_size
from portwright.sandbox.scrape._ratelimit import RateLimitMiddleware, TokenBuckets
from portwright.sandbox.scrape._render import layout

__all__ = ["build_js", "js_spec"]

_SCRIPT = (Path(__file__).parent / "static" / "app.js").read_bytes()


def build_js(ctx: ServiceContext) -> ASGIApp:
    """The JS-rendered catalogue: HTML shells, a script, and the JSON API it reads."""
    catalog = Catalog(ctx.chaos.draw, int(ctx.options.get("products", 5000)))

    def shell(title: str, attrs: str) -> HTMLResponse:
        delay = int(ctx.options.get("render_delay_ms") or 0)
        body = (
            f'<main id="app" data-state="loading" data-render-delay-ms="{delay}" {attrs}></main>'
            '<noscript><p class="noscript">This page needs JavaScript.</p></noscript>'
            '<script src="/static/app.js"></script>'
        )
        return HTMLResponse(layout(title, body))

    def missing(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    async def index(_: Request) -> HTMLResponse:
        body = (
            '<h1 class="site">Sandbox JS catalogue</h1>'
            '<a class="catalog" href="/catalog">Browse the catalogue</a>'
        )
        return HTMLResponse(layout("Sandbox JS catalogue", body))

    async def product_page(request: Request) -> HTMLResponse:
        pid: int = request.path_params["product_id"]
        if catalog.get(pid) is None:
            return HTMLResponse(layout("Not found", '<h1 id="not-found">Not found</h1>'), 404)
        return shell("Product", f'data-product-id="{pid}"')

    async def listing_page(request: Request) -> HTMLResponse:
        number = page_number(request)
        if number is None or number > catalog.page_count(page_size(ctx.options)):
            return HTMLResponse(layout("Not found", '<h1 id="not-found">Not found</h1>'), 404)
        return shell(f"Catalogue, page {number}", f'data-page="{number}"')

    async def api_product(request: Request) -> JSONResponse:
        found = catalog.get(request.path_params["product_id"])
        if found is None:
            return missing(404, "no such product")
        return JSONResponse(found.as_json())

    async def api_catalog(request: Request) -> JSONResponse:
        number = page_number(request)
        size = page_size(ctx.options)
        pages = catalog.page_count(size)
        if number is None:
            return missing(400, "page must be a positive integer")
        if number > pages:
            return missing(404, "no such page")
        products = [p.as_json() for p in catalog.page(number, size)]
        return JSONResponse({"page": number, "pages": pages, "products": products})

    async def script(_: Request) -> Response:
        return Response(_SCRIPT, media_type="text/javascript")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/catalog", listing_page),
            Route("/product/{product_id:int}", product_page),
            Route("/api/product/{product_id:int}", api_product),
            Route("/api/catalog", api_catalog),
            Route("/static/app.js", script),
        ]
    )
    return RateLimitMiddleware(app, TokenBuckets(ctx.options))


def js_spec() -> ServiceSpec:
    """5,000 client-rendered products; no rate limit unless `rate_per_s` is set."""
    return ServiceSpec(
        "scrape-js",
        build_js,
        options={"products": 5000, "page_size": 50, "render_delay_ms": 0, "rate_per_s": 0},
    )
