"""The SSRF guard, re-exported where the gateway first had it.

It lives in `portwright.resources.ssrf` now: the engines and the scrape adapter
run it on every request they make, and they do not import the gateway.
"""

from portwright.resources.ssrf import (
    AllowEntry,
    Check,
    GuardedTransport,
    Resolver,
    StaticResolver,
    UrlGuard,
    UrlRefusedError,
    all_checks,
    curl_resolve,
    guarded_client,
    is_public,
    parse_allowlist,
    refusal_reason,
    refusing,
    system_resolver,
)

__all__ = [
    "AllowEntry",
    "Check",
    "GuardedTransport",
    "Resolver",
    "StaticResolver",
    "UrlGuard",
    "UrlRefusedError",
    "all_checks",
    "curl_resolve",
    "guarded_client",
    "is_public",
    "parse_allowlist",
    "refusal_reason",
    "refusing",
    "system_resolver",
]
