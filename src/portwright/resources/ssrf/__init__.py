"""The SSRF guard for every URL a job or a webhook reaches.

The gateway checks a scrape URL when it arrives, but the guard lives where the
bytes leave: a job's step client (`sc.http`), every ladder rung (curl, the
browser's guard proxy), robots.txt and the captcha solver check every request
they make (each redirect hop, every request a browser page makes) and connect
to the address that was checked (`GuardedTransport`, `curl_resolve`), so neither
a redirect nor a second DNS answer reaches a private address. Private targets
are reachable only through `Settings.url_allowlist`.
"""

from portwright.resources.ssrf._guard import (
    PerOrigin,
    Resolver,
    StaticResolver,
    UrlGuard,
    UrlRefusedError,
    per_origin,
    system_resolver,
    url_origin,
)
from portwright.resources.ssrf._policy import AllowEntry, is_public, parse_allowlist, refusal_reason
from portwright.resources.ssrf._transport import (
    Check,
    GuardedTransport,
    all_checks,
    curl_resolve,
    guarded_client,
    refusing,
)

__all__ = [
    "AllowEntry",
    "Check",
    "GuardedTransport",
    "PerOrigin",
    "Resolver",
    "StaticResolver",
    "UrlGuard",
    "UrlRefusedError",
    "all_checks",
    "curl_resolve",
    "guarded_client",
    "is_public",
    "parse_allowlist",
    "per_origin",
    "refusal_reason",
    "refusing",
    "system_resolver",
    "url_origin",
]
