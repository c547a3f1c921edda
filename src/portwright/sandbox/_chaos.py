"""Chaos knobs for sandbox services, and the ASGI middleware that applies them.

Decisions are deterministic under the world's seed and independent of how
concurrent requests interleave: each draw is a hash of (seed, service, key,
n) where n counts earlier draws for the same key. Two runs with the same seed
and the same per-client request sequence see the same faults.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ChaosKnobs", "ChaosMiddleware", "ChaosState", "identity_of_scope"]

IDENTITY_HEADER = b"x-sandbox-proxy-identity"


class ChaosKnobs(BaseModel):
    """The knobs of one sandbox service. Every field can be changed at runtime."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    rate_429: float = Field(0.0, ge=0.0, le=1.0, description="share of requests answered 429")
    retry_after_s: float = Field(2.0, ge=0.0, description="Retry-After sent with a 429")
    rate_5xx: float = Field(0.0, ge=0.0, le=1.0, description="share of requests answered 503")
    latency_ms: tuple[float, float] = Field((0.0, 0.0), description="uniform latency range")
    down: bool = Field(False, description="answer every request 503 (site down)")
    downtime: list[tuple[float, float]] = Field(
        default_factory=list, description="[start_s, end_s) windows since start when down"
    )
    dom_version: int = Field(1, ge=1, le=2, description="markup version served by the portal")
    captcha_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="share of logins/pages with captcha"
    )
    banned_identities: list[str] = Field(
        default_factory=list, description="proxy identities answered 403 with a block page"
    )
    ban_after: int | None = Field(
        None, ge=1, description="ban an identity after this many requests within ban_window_s"
    )
    ban_window_s: float = Field(60.0, gt=0.0)
    exempt_paths: list[str] = Field(
        default_factory=list, description="path prefixes never faulted (e.g. static assets)"
    )


class ChaosState:
    """Knobs plus the seeded, interleaving-independent random source of one service."""

    def __init__(self, service: str, seed: int, knobs: ChaosKnobs | None = None) -> None:
        self.service = service
        self.seed = seed
        self.knobs = knobs or ChaosKnobs()
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._counters: dict[str, int] = defaultdict(int)
        self._seen: dict[str, list[float]] = defaultdict(list)
        self._auto_banned: set[str] = set()

    def update(self, changes: dict[str, Any]) -> ChaosKnobs:
        """Apply a partial update; raises pydantic.ValidationError naming the bad field."""
        merged = self.knobs.model_dump() | changes
        new = ChaosKnobs.model_validate(merged)
        with self._lock:
            self.knobs = new
            if not new.banned_identities and new.ban_after is None:
                self._auto_banned.clear()
        return new

    def draw(self, key: str) -> float:
        """A uniform number in [0, 1) for the next event on `key`, reproducible under the seed."""
        with self._lock:
            n = self._counters[key]
            self._counters[key] = n + 1
        digest = hashlib.blake2b(
            f"{self.seed}|{self.service}|{key}|{n}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64

    def chance(self, rate: float, key: str) -> bool:
        return rate > 0.0 and self.draw(key) < rate

    def is_down(self) -> bool:
        k = self.knobs
        if k.down:
            return True
        elapsed = time.monotonic() - self.started_at
        return any(start <= elapsed < end for start, end in k.downtime)

    def is_banned(self, identity: str) -> bool:
        k = self.knobs
        if identity in k.banned_identities or identity in self._auto_banned:
            return True
        if k.ban_after is None or identity == "direct":
            return False
        now = time.monotonic()
        with self._lock:
            seen = [t for t in self._seen[identity] if now - t < k.ban_window_s]
            seen.append(now)
            self._seen[identity] = seen
            if len(seen) > k.ban_after:
                self._auto_banned.add(identity)
                return True
        return False

    def banned(self) -> list[str]:
        return sorted(set(self.knobs.banned_identities) | self._auto_banned)


def identity_of_scope(scope: Scope) -> str:
    """Who a request comes from, as a portal sees it.

    Sandbox proxies connect from their own loopback address (127.0.0.N) and
    also stamp absolute-form requests with a header; a direct client is "direct".
    """
    for name, value in scope.get("headers", []):
        if name == IDENTITY_HEADER:
            return str(value.decode("latin-1"))
    client = scope.get("client")
    host = client[0] if client else "127.0.0.1"
    return "direct" if host in ("127.0.0.1", "::1", "testclient") else f"ip:{host}"


BLOCK_PAGE = (
    b"<!doctype html><html><head><title>Access denied</title></head>"
    b'<body><h1 id="blocked">Access denied</h1><p>Your network has been blocked.</p></body></html>'
)


class ChaosMiddleware:
    """Pure ASGI middleware: latency, downtime, bans, 429s and 5xx before the app runs."""

    def __init__(self, app: ASGIApp, state: ChaosState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        k = self.state.knobs
        path: str = scope.get("path", "")
        if any(path.startswith(p) for p in k.exempt_paths):
            await self.app(scope, receive, send)
            return
        identity = identity_of_scope(scope)
        key = f"{identity}|{scope.get('method')}|{path}"
        low, high = k.latency_ms
        if high > 0:
            delay = low + (high - low) * self.state.draw("latency|" + key)
            await asyncio.sleep(delay / 1000.0)
        if self.state.is_down():
            await _respond(send, 503, b"<h1>Service unavailable</h1>", [(b"retry-after", b"5")])
            return
        if self.state.is_banned(identity):
            await _respond(send, 403, BLOCK_PAGE, [])
            return
        if self.state.chance(k.rate_429, "429|" + key):
            retry = str(k.retry_after_s).encode()
            await _respond(send, 429, b"<h1>Too many requests</h1>", [(b"retry-after", retry)])
            return
        if self.state.chance(k.rate_5xx, "5xx|" + key):
            await _respond(send, 503, b"<h1>Temporarily unavailable</h1>", [])
            return
        await self.app(scope, receive, send)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
