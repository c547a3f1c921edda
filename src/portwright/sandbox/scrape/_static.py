"""`scrape-static`: thousands of server-rendered product pages behind a per-identity limit."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp

from portwright.sandbox._world import ServiceContext, ServiceSpec
from portwright.sandbox.scrape._catalog import Catalog
from portwright.sandbox.scrape._content import catalogue_routes
from portwright.sandbox.scrape._ratelimit import RateLimitMiddleware, TokenBuckets

__all__ = ["build_static", "static_spec"]


def build_static(ctx: ServiceContext) -> ASGIApp:
    """The static catalogue: `/`, `/catalog?page=N`, `/product/{id}`, rate-limited per identity."""
    catalog = Catalog(ctx.chaos.draw, int(ctx.options.get("products", 5000)))
    app = Starlette(routes=catalogue_routes(catalog, ctx.options, "Sandbox static catalogue"))
    return RateLimitMiddleware(app, TokenBuckets(ctx.options))


def static_spec() -> ServiceSpec:
    """5,000 products, 50 a page, 20 requests/s per identity with a burst of 40."""
    return ServiceSpec(
        "scrape-static",
        build_static,
        options={"products": 5000, "page_size": 50, "rate_per_s": 20.0, "burst": 40},
    )
