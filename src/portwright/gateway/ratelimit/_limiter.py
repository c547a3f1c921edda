"""Rate limits on the `limits` library: in memory by default, on Redis when configured,
so several gateway processes share one set of buckets.

Redis down fails OPEN, to per-process limits: a Redis call that errors (or times out,
after `REDIS_TIMEOUT_S`) is answered from this process's own in-memory buckets with the
same limits, a warning is logged once per outage, and
`portwright_ratelimit_fallback_total` counts each such answer. Redis is tried again
`retry_s` after the failure; its first good answer logs the recovery. With N gateway
processes a key may get up to N times its limit while Redis is down: the price of
serving requests rather than refusing them all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from portwright.observability import PROCESS

__all__ = ["Decision", "RateLimiter", "rate_headers"]


T = TypeVar("T")
log = structlog.get_logger("portwright.ratelimit")

REDIS_TIMEOUT_S = 1.0  # a Redis call slower than this counts as Redis down
RETRY_REDIS_S = 5.0  # how long answers stay per-process before Redis is tried again


@dataclass(frozen=True, slots=True)
class Decision:
    """One bucket's answer: allowed or not, and what to tell the client."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    window_s: int


@lru_cache(maxsize=256)
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


class RateLimiter:
    """Sliding-window counters keyed by any tuple of identifiers; on Redis, failing open
    to this process's own counters while Redis is unreachable (see the module)."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        namespace: str = "portwright",
        retry_s: float = RETRY_REDIS_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        storage: Storage
        if redis_url:
            url = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
            storage = RedisStorage(
                url,
                implementation="redispy",
                key_prefix=f"{namespace}-rl",
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.shared = bool(redis_url)
        # the per-process fallback, used only while Redis is unreachable
        self.local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.retry_s = retry_s
        self._clock = clock
        self._redis_down_since: float | None = None
        self._retry_at = 0.0

    @property
    def degraded(self) -> bool:
        """Whether answers come from per-process counters (Redis unreachable)."""
        return self._redis_down_since is not None

    async def _run(self, op: Callable[[SlidingWindowCounterRateLimiter], Awaitable[T]]) -> T:
        """`op` on the shared counters, or on this process's while Redis is down."""
        if self.shared and (not self.degraded or self._clock() >= self._retry_at):
            try:
                result = await op(self.strategy)
            except Exception as exc:  # noqa: BLE001 - any Redis failure fails open
                self._fell_back(exc)
            else:
                if self.degraded:
                    down_for = self._clock() - (self._redis_down_since or 0.0)
                    self._redis_down_since = None
                    PROCESS.ratelimit_degraded(False)
                    log.warning("redis reachable again: rate limits shared", down_s=down_for)
                return result
        if self.shared:
            PROCESS.ratelimit_fallback()
        return await op(self.local)

    def _fell_back(self, exc: Exception) -> None:
        self._retry_at = self._clock() + self.retry_s
        if self._redis_down_since is None:
            self._redis_down_since = self._clock()
            PROCESS.ratelimit_degraded(True)
            log.warning(
                "redis unreachable: rate limits fail open to per-process limits",
                error=f"{type(exc).__name__}: {exc}"[:300],
                retry_s=self.retry_s,
            )

    @staticmethod
    async def _decide(
        strategy: SlidingWindowCounterRateLimiter,
        item: RateLimitItem,
        ids: tuple[str, ...],
        *,
        count: bool,
    ) -> Decision:
        allowed = await (strategy.hit(item, *ids) if count else strategy.test(item, *ids))
        stats = await strategy.get_window_stats(item, *ids)
        reset_after = max(0.0, stats.reset_time - time.time())
        return Decision(
            allowed, item.amount, max(0, stats.remaining), reset_after, item.get_expiry()
        )

    async def hit(self, limit: str, *ids: str) -> Decision:
        """Count one request against the bucket; `allowed` is False once it is empty."""
        item = _item(limit)
        return await self._run(lambda s: self._decide(s, item, ids, count=True))

    async def test(self, limit: str, *ids: str) -> bool:
        """Whether one more request would be allowed (counts nothing)."""
        item = _item(limit)
        return await self._run(lambda s: s.test(item, *ids))

    async def peek(self, limit: str, *ids: str) -> Decision:
        item = _item(limit)
        return await self._run(lambda s: self._decide(s, item, ids, count=False))

    async def reset(self) -> None:
        await self.storage.reset()
        await self.local.storage.reset()

    async def aclose(self) -> None:
        """Close the Redis connections (a no-op in memory). Call on the loop that used them."""
        if isinstance(self.storage, RedisStorage):
            client = getattr(self.storage.bridge, "storage", None)
            if client is not None:
                await client.aclose()


def rate_headers(decision: Decision, *, limited: bool = False) -> dict[str, str]:
    """`RateLimit-*` headers (IETF draft) and, when limited, `Retry-After`."""
    reset = max(1, math.ceil(decision.reset_after))
    headers = {
        "ratelimit-limit": str(decision.limit),
        "ratelimit-remaining": str(decision.remaining),
        "ratelimit-reset": str(reset),
        "ratelimit-policy": f"{decision.limit};w={decision.window_s}",
    }
    if limited:
        headers["retry-after"] = str(reset)
    return headers
