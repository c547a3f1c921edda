"""The SSRF guard for every user-supplied URL (scrape targets, webhook endpoints).

The gateway checks a URL when it arrives; the engines check every request a
fetch makes (each redirect hop, and every request a browser page makes), so a
URL that passed cannot be redirected to a private address. `portwright.gateway.ssrf`
re-exports this package.
"""

from portwright.resources.ssrf._guard import (
    Resolver,
    StaticResolver,
    UrlGuard,
    UrlRefusedError,
    system_resolver,
)
from portwright.resources.ssrf._policy import AllowEntry, is_public, parse_allowlist, refusal_reason
from portwright.resources.ssrf._transport import GuardedTransport, guarded_client

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
