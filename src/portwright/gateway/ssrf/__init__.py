"""The SSRF guard, re-exported where the gateway first had it.

It lives in `portwright.resources.ssrf` now: the engines and the scrape adapter
run it on every request they make, and they do not import the gateway.
"""

from portwright.resources.ssrf import (
    AllowEntry,
    GuardedTransport,
    Resolver,
    StaticResolver,
    UrlGuard,
    UrlRefusedError,
    guarded_client,
    is_public,
    parse_allowlist,
    refusal_reason,
    system_resolver,
)

__all__ = [
    "AllowEntry",
    "GuardedTransport",
    "Resolver",
    "StaticResolver",
    "UrlGuard",
    "UrlRefusedError",
    "guarded_client",
    "is_public",
    "parse_allowlist",
    "refusal_reason",
    "system_resolver",
]
