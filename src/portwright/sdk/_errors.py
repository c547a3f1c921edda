"""The error tree adapters raise. Each class *is* a retry policy (DESIGN.md, error classes).

PortwrightError
├── JobError                      raised by adapter steps; the orchestrator applies the policy
│   ├── TransientError            timeout, 5xx, reset → backoff with jitter; then portal degraded
│   ├── RateLimitedError          429, Retry-After → portal-wide cooldown, then resume
│   ├── BlockedError              403 from the edge, block page → rotate identity, then operator
│   ├── ChallengeError            captcha → solver chain, then operator
│   ├── PageChangedError          selector missing, unknown page → operator, with evidence
│   └── PermanentError            validation, duplicate, site gone → fail, no retry
├── InputTimeoutError             wait_for_input() ran out of time (raised into the adapter)
├── IllegalTransitionError        a state machine forbids the transition
├── JobFinishedError              the job ended (e.g. cancelled) while the adapter ran
└── UnknownAdapterError           no adapter registered under that name
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BlockedError",
    "ChallengeError",
    "IllegalTransitionError",
    "InputTimeoutError",
    "JobError",
    "JobFinishedError",
    "PageChangedError",
    "PermanentError",
    "PortwrightError",
    "RateLimitedError",
    "TransientError",
    "UnknownAdapterError",
]


class PortwrightError(Exception):
    """Base of every error Portwright raises on purpose."""


class JobError(PortwrightError):
    """An adapter step failed in a way the orchestrator knows how to handle."""

    error_class: str = "unknown"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details


class TransientError(JobError):
    """Worth retrying soon: a timeout, a 5xx, a reset connection."""

    error_class = "transient"


class RateLimitedError(JobError):
    """The portal said slow down; every job of the portal waits `retry_after` seconds."""

    error_class = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 30.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = max(0.0, retry_after)


class BlockedError(JobError):
    """The portal's edge refused this identity (proxy, profile); rotate and retry."""

    error_class = "blocked"


class ChallengeError(JobError):
    """A challenge (captcha) stands in the way and nothing in the step solved it."""

    error_class = "challenge"


class PageChangedError(JobError):
    """The page is not what the adapter expects: stop and ask a person; never guess."""

    error_class = "page_changed"

    def __init__(
        self,
        message: str,
        *,
        selector_key: str | None = None,
        selector: str | None = None,
        url: str | None = None,
        html: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, selector_key=selector_key, selector=selector, url=url, **details)
        self.selector_key = selector_key
        self.selector = selector
        self.url = url
        self.html = html


class PermanentError(JobError):
    """Retrying cannot help: the job (or item) fails with this reason."""

    error_class = "permanent"


class InputTimeoutError(PortwrightError):
    """Nobody provided the input `name` in time."""

    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(f"no {name!r} input within {timeout_s:g}s")
        self.name = name
        self.timeout_s = timeout_s


class IllegalTransitionError(PortwrightError):
    """The job's state machine does not allow this transition."""

    def __init__(self, machine: str, from_state: str | None, to_state: str) -> None:
        super().__init__(f"{machine}: transition {from_state} → {to_state} is not allowed")
        self.machine = machine
        self.from_state = from_state
        self.to_state = to_state


class JobFinishedError(PortwrightError):
    """The job reached a terminal state (cancelled, failed) while its adapter was running."""

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"job {job_id} already ended in {state}")
        self.job_id = job_id
        self.state = state


class UnknownAdapterError(PortwrightError, LookupError):
    """No adapter by that name; `known` lists the registered ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown adapter {name!r}; known adapters: {', '.join(known) or 'none'}")
        self.name = name
        self.known = known
