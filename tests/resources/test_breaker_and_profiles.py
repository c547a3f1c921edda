"""The provider circuit breaker, and the per-user pool of persistent browser profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwright.resources import (
    BreakerConfig,
    CircuitBreaker,
    ProfilePool,
    ProfilesBurnedError,
    ProfilesCoolingError,
)
from portwright.sdk import BlockedError, TransientError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_on_a_failure_rate_and_probes_once_after_a_while() -> None:
    """Past the failure rate it opens; after open_s exactly one probe decides closed or open."""
    clock = Clock()
    breaker = CircuitBreaker(
        "p", BreakerConfig(min_calls=4, failure_rate=0.5, open_s=10), clock=clock
    )
    for ok in (True, False, True, False):
        breaker.record(ok=ok)
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.now += 10
    assert breaker.available()
    assert breaker.allow()
    assert not breaker.allow()  # the probe is taken
    assert breaker.record(ok=False) == "open"
    clock.now += 10
    assert breaker.allow()
    assert breaker.record(ok=True) == "closed"
    assert breaker.allow()


def test_profiles_rotate_least_recently_used_and_rest_after_use(tmp_path: Path) -> None:
    """A returned profile rests for the cooldown while the others are lent in LRU order."""
    clock = Clock()
    pool = ProfilePool(tmp_path, per_user=3, cooldown_s=1800, clock=clock)
    leases = [pool.acquire("bob") for _ in range(3)]
    assert sorted(lease.index for lease in leases) == [0, 1, 2]
    assert all(lease.path.is_dir() for lease in leases)
    with pytest.raises(ProfilesCoolingError) as busy:
        pool.acquire("bob")
    assert isinstance(busy.value, TransientError)
    for offset, lease in enumerate(leases):
        clock.now += offset
        pool.release(lease)
    with pytest.raises(ProfilesCoolingError) as resting:
        pool.acquire("bob")
    assert resting.value.details["available_at"] == pytest.approx(1000 + 1800)
    clock.now = 1000 + 1800
    assert pool.acquire("bob").index == leases[0].index
    assert pool.acquire("carol").index == 0  # another user has a pool of their own


def test_a_burned_profile_is_never_lent_again_until_reset(tmp_path: Path) -> None:
    """Burned profiles stay out, all burned means a person must act, and state survives restarts."""
    clock = Clock()
    pool = ProfilePool(tmp_path, per_user=2, cooldown_s=0, clock=clock)
    for _ in range(2):
        pool.release(pool.acquire("dan"), burned=True)
    with pytest.raises(ProfilesBurnedError) as caught:
        pool.acquire("dan")
    assert isinstance(caught.value, BlockedError)
    reopened = ProfilePool(tmp_path, per_user=2, cooldown_s=0, clock=clock)
    with pytest.raises(ProfilesBurnedError):
        reopened.acquire("dan")
    reopened.reset("dan")
    assert reopened.acquire("dan").index in (0, 1)


def test_one_profile_is_never_open_twice(tmp_path: Path) -> None:
    """A profile held by one pool (or process) is skipped by another on the same directory."""
    one = ProfilePool(tmp_path, per_user=1, cooldown_s=0)
    two = ProfilePool(tmp_path, per_user=1, cooldown_s=0)
    held = one.acquire("eve")
    with pytest.raises(ProfilesCoolingError):
        two.acquire("eve")
    one.release(held)
    two.release(two.acquire("eve"))
