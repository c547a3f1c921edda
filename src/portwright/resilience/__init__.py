"""The resilience kit: one backoff, one Retry-After parser, one breaker state machine (in
memory or in the database), one polling-worker base. Every retry loop, breaker and poller
in Portwright is built from these."""

from portwright.resilience._backoff import Backoff, keyed_random
from portwright.resilience._breaker import (
    Breaker,
    BreakerPolicy,
    BreakerState,
    BreakerStatus,
    BreakerStorage,
    MemoryBreakerStorage,
    Window,
    on_allow,
    on_outcome,
)
from portwright.resilience._polling import (
    BackoffPacer,
    Pacer,
    PollingThread,
    PollingWorker,
    Round,
    cancel_and_wait,
)
from portwright.resilience._retry_after import DEFAULT_CAP_S, parse_retry_after

__all__ = [
    "DEFAULT_CAP_S",
    "Backoff",
    "BackoffPacer",
    "Breaker",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatus",
    "BreakerStorage",
    "MemoryBreakerStorage",
    "Pacer",
    "PollingThread",
    "PollingWorker",
    "Round",
    "Window",
    "cancel_and_wait",
    "keyed_random",
    "on_allow",
    "on_outcome",
    "parse_retry_after",
]
