"""Rate limits on the `limits` library: in memory by default, on Redis when configured,
so several gateway processes share one set of buckets."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

__all__ = ["Decision", "RateLimiter", "rate_headers"]


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
    """Sliding-window counters keyed by any tuple of identifiers."""

    def __init__(self, redis_url: str | None = None, *, namespace: str = "portwright") -> None:
        storage: Storage
        if redis_url:
            url = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
            storage = RedisStorage(url, implementation="redispy", key_prefix=f"{namespace}-rl")
        else:
            storage = MemoryStorage()
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.shared = bool(redis_url)

    async def _decision(self, item: RateLimitItem, allowed: bool, ids: tuple[str, ...]) -> Decision:
        stats = await self.strategy.get_window_stats(item, *ids)
        reset_after = max(0.0, stats.reset_time - time.time())
        return Decision(
            allowed, item.amount, max(0, stats.remaining), reset_after, item.get_expiry()
        )

    async def hit(self, limit: str, *ids: str) -> Decision:
        """Count one request against the bucket; `allowed` is False once it is empty."""
        item = _item(limit)
        allowed = await self.strategy.hit(item, *ids)
        return await self._decision(item, allowed, ids)

    async def test(self, limit: str, *ids: str) -> bool:
        """Whether one more request would be allowed (counts nothing)."""
        return await self.strategy.test(_item(limit), *ids)

    async def peek(self, limit: str, *ids: str) -> Decision:
        item = _item(limit)
        return await self._decision(item, await self.strategy.test(item, *ids), ids)

    async def reset(self) -> None:
        await self.storage.reset()

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
