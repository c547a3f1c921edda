"""The server-rendered catalogue routes shared by the static, guarded and captcha sites.

`/` links to the catalogue; `/catalog?page=N` lists `page_size` products with
`a.next` / `a.prev`; `/product/{id}` is one product. A bad page number is 400,
a page or product outside the catalogue is 404. `/robots.txt` disallows
`/private/` for every agent; `/private/{id}` serves the same product page, for
checking that a scraper respects robots.txt (or was told not to).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from portwright.sandbox.scrape._catalog import Catalog
from portwright.sandbox.scrape._render import layout, listing_html, product_html

__all__ = ["ROBOTS_TXT", "catalogue_routes", "page_number", "page_size"]

ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"


def page_size(options: Mapping[str, Any]) -> int:
    """The listing page size from the service options (default 50)."""
    return max(1, int(options.get("page_size") or 50))


def page_number(request: Request) -> int | None:
    """The `page` query parameter as a positive int (default 1), or None when malformed."""
    raw = request.query_params.get("page", "1")
    try:
        number = int(raw)
    except ValueError:
        return None
    return number if number >= 1 else None


def _not_found(what: str) -> HTMLResponse:
    body = f'<h1 id="not-found">Not found</h1><p>{what}</p>'
    return HTMLResponse(layout("Not found", body), status_code=404)


def catalogue_routes(catalog: Catalog, options: Mapping[str, Any], site: str) -> list[Route]:
    """Index, listing and product routes rendering `catalog` server-side."""

    async def index(_: Request) -> HTMLResponse:
        body = (
            f'<h1 class="site">{site}</h1>'
            f'<p class="count" data-products="{len(catalog)}">{len(catalog)} products</p>'
            '<a class="catalog" href="/catalog?page=1">Browse the catalogue</a>'
        )
        return HTMLResponse(layout(site, body))

    async def listing(request: Request) -> HTMLResponse:
        number = page_number(request)
        if number is None:
            body = '<h1 id="bad-request">Bad page number</h1>'
            return HTMLResponse(layout("Bad request", body), status_code=400)
        size = page_size(options)
        pages = catalog.page_count(size)
        if number > pages:
            return _not_found(f"There is no page {number}.")
        html = listing_html(catalog.page(number, size), number, pages)
        return HTMLResponse(layout(f"Catalogue, page {number}", html))

    async def product(request: Request) -> HTMLResponse:
        pid: int = request.path_params["product_id"]
        found = catalog.get(pid)
        if found is None:
            return _not_found(f"There is no product {pid}.")
        return HTMLResponse(layout(found.title, product_html(found)))

    async def robots(_: Request) -> PlainTextResponse:
        return PlainTextResponse(ROBOTS_TXT)

    return [
        Route("/", index),
        Route("/catalog", listing),
        Route("/product/{product_id:int}", product),
        Route("/private/{product_id:int}", product),
        Route("/robots.txt", robots),
    ]
