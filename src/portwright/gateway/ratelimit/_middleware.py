"""Per-key, per-route rate limits as pure ASGI middleware (after authentication).

Reads use the default budget, writes the write budget, and brute-forceable
routes (code and input submission) a much smaller one. Every answer carries
`RateLimit-*` headers; a 429 also carries `Retry-After`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portwright.gateway._errors import error_response
from portwright.gateway._principal import principal_of
from portwright.gateway.ratelimit._limiter import RateLimiter, rate_headers

__all__ = ["RateLimitMiddleware"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


_TEMPLATES: dict[int, list[tuple[re.Pattern[str], str]]] = {}


def _templates(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """(pattern, template) for every documented path of the app, built once per app."""
    found = _TEMPLATES.get(id(app))
    if found is None:
        paths = app.openapi().get("paths", {}) if hasattr(app, "openapi") else {}
        found = [
            (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(t)) + "$"), t)
            for t in paths
        ]
        _TEMPLATES[id(app)] = found
    return found


def route_template(scope: Scope) -> str:
    """The path template of the route this request matches, e.g. `/v1/jobs/{job_id}`."""
    path = scope["path"]
    for pattern, template in _templates(scope.get("app")):
        if pattern.match(path):
            return template
    return "unmatched"


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        default: str,
        write: str,
        sensitive: str,
        sensitive_routes: Collection[str],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.default = default
        self.write = write
        self.sensitive = sensitive
        self.sensitive_routes = frozenset(sensitive_routes)

    def _limit_for(self, method: str, template: str) -> str:
        if template in self.sensitive_routes:
            return self.sensitive
        return self.write if method in WRITE_METHODS else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = principal_of(scope) if scope["type"] == "http" else None
        if principal is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        template = route_template(scope)
        limit = self._limit_for(method, template)
        decision = await self.limiter.hit(limit, "key", principal.key_id, method, template)
        if not decision.allowed:
            response = error_response(
                429,
                "rate_limited",
                f"rate limit of {limit} for {method} {template} reached; retry later",
                headers=rate_headers(decision, limited=True),
            )
            await response(scope, receive, send)
            return
        headers = rate_headers(decision)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable = MutableHeaders(scope=message)
                for name, value in headers.items():
                    mutable[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
