"""Sandbox sites for the scraping API (scenario 2), all serving one catalogue markup.

- `scrape-static`: server-rendered, 5,000 products; per-identity token bucket
  (options `rate_per_s`, `burst`) answering 429 with Retry-After.
- `scrape-js`: HTML shells whose script renders the product from a JSON API.
- `scrape-guarded`: refuses clients that are not browsers (our own check).
- `scrape-captcha`: behind the sandbox captcha; a solved one opens the site.

Markup (see `_render`): `article.product[data-product-id]`, `h1.title`,
`span.price[data-amount][data-currency]`, `ul.tags li`, `table.specs tr th/td`,
`p.description`; listings `ul.products li.product-card a.product-link`,
`nav.pagination a.prev / a.next`.
"""

from __future__ import annotations

from portwright.sandbox._world import ServiceSpec
from portwright.sandbox.scrape._captcha_site import PASS_COOKIE, captcha_site_spec
from portwright.sandbox.scrape._catalog import Catalog, Product
from portwright.sandbox.scrape._guard import COOKIE as GUARD_COOKIE
from portwright.sandbox.scrape._guard import guarded_spec
from portwright.sandbox.scrape._js import js_spec
from portwright.sandbox.scrape._ratelimit import RateLimitMiddleware, TokenBuckets
from portwright.sandbox.scrape._static import static_spec

__all__ = [
    "GUARD_COOKIE",
    "PASS_COOKIE",
    "Catalog",
    "Product",
    "RateLimitMiddleware",
    "TokenBuckets",
    "specs",
]


def specs() -> list[ServiceSpec]:
    """The four scrape sites of a default world."""
    return [static_spec(), js_spec(), guarded_spec(), captcha_site_spec()]
