"""The SSRF guard for every user-supplied URL (scrape targets, webhook endpoints)."""

from portwright.gateway.ssrf._guard import (
    Resolver,
    StaticResolver,
    UrlGuard,
    UrlRefusedError,
    system_resolver,
)
from portwright.gateway.ssrf._policy import AllowEntry, is_public, parse_allowlist, refusal_reason
from portwright.gateway.ssrf._transport import GuardedTransport, guarded_client

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
