"""A per-identity token bucket as pure ASGI middleware, tuned live through service options.

Options (read on every request, so an admin PATCH takes effect at once):
`rate_per_s` tokens refilled per second (0 or missing disables the limit) and
`burst` the bucket size. An empty bucket answers 429 with `Retry-After`
(whole seconds until the next token) and a page carrying `#rate-limited`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from portwright.sandbox._chaos import identity_of_scope

__all__ = ["RateLimitMiddleware", "TokenBuckets"]

_BODY = (
    b"<!doctype html><html><head><title>Too many requests</title></head><body>"
    b'<h1 id="rate-limited">Too many requests</h1><p>Slow down.</p></body></html>'
)


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """One bucket per identity; `take` spends a token or says how long to wait."""

    def __init__(
        self, options: Mapping[str, Any], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._options = options
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def take(self, identity: str) -> float | None:
        """None when the request may pass, else the seconds until a token is available."""
        rate = float(self._options.get("rate_per_s") or 0.0)
        if rate <= 0:
            return None
        burst = max(1.0, float(self._options.get("burst") or 1))
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(identity)
            if bucket is None:
                bucket = self._buckets[identity] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / rate


class RateLimitMiddleware:
    """Answers 429 with Retry-After to an identity whose bucket is empty."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(identity_of_scope(scope))
        if wait is None:
            await self.app(scope, receive, send)
            return
        retry_after = str(max(1, math.ceil(wait))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(_BODY)).encode()),
                    (b"retry-after", retry_after),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})
