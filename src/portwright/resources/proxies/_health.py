"""Per-proxy health: success rate, latency, consecutive failures and the cooldown they earn."""

from __future__ import annotations

from dataclasses import dataclass

from portwright.resilience import Backoff

__all__ = ["HealthPolicy", "ProxyHealth"]


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """How failures cool a proxy down: base * 2^(n-1) after n consecutive failures, capped."""

    cooldown_base_s: float = 2.0
    cooldown_max_s: float = 300.0
    smoothing: float = 0.2  # weight of the newest outcome in the moving averages
    burn_ttl_s: float | None = 6 * 3600.0  # how long a ban keeps a proxy out of a site


@dataclass(slots=True)
class ProxyHealth:
    """Mutable health of one proxy; the pool holds it under its lock."""

    success_rate: float = 1.0
    latency_s: float | None = None
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    cooldown_until: float = 0.0

    def succeeded(self, policy: HealthPolicy, latency_s: float | None) -> None:
        self.successes += 1
        self.consecutive_failures = 0
        self.cooldown_until = 0.0
        self.success_rate += policy.smoothing * (1.0 - self.success_rate)
        if latency_s is not None:
            if self.latency_s is None:
                self.latency_s = latency_s
            else:
                self.latency_s += policy.smoothing * (latency_s - self.latency_s)

    def failed(self, policy: HealthPolicy, now: float) -> float:
        """Record a failure of the proxy itself; returns when its cooldown ends."""
        self.failures += 1
        self.consecutive_failures += 1
        self.success_rate -= policy.smoothing * self.success_rate
        cooldown = Backoff(policy.cooldown_base_s, policy.cooldown_max_s)
        wait = cooldown.ceiling(self.consecutive_failures)
        self.cooldown_until = now + wait
        return self.cooldown_until

    def cooling(self, now: float) -> bool:
        return self.cooldown_until > now
