"""The one breaker state machine, with an injected clock, on every storage: in memory,
and in the database (the portal breakers' tables, the endpoint row) on SQLite and
PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwright.resilience import Breaker, BreakerPolicy, BreakerStorage, MemoryBreakerStorage
from portwright.store import SqlBreakerStorage, Store
from tests.conftest import SKIP_PG, pg_database

POLICY = BreakerPolicy(window_s=60, min_calls=4, failure_rate=0.5, open_s=10, probe_lease_s=5)


def tripped(storage: BreakerStorage) -> tuple[Breaker, Clock]:
    """A breaker on `storage` opened by four failures, and its clock."""
    clock = Clock()
    breaker = Breaker("b", POLICY, storage=storage, clock=clock)
    for _ in range(4):
        breaker.record(ok=False)
    return breaker, clock


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BreakerStorage]:
    """Each storage: in memory, and the database one on SQLite and on PostgreSQL."""
    if request.param == "memory":
        yield MemoryBreakerStorage()
        return
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'breakers.sqlite'}"])
    elif SKIP_PG:
        pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
    else:
        urls = pg_database("pw_breaker")
    store = Store.open(next(urls))
    try:
        yield SqlBreakerStorage(store.engine)
    finally:
        store.close()
        for _ in urls:  # drops the PostgreSQL database
            pass


def test_opens_on_the_failure_rate_once_enough_calls_were_seen(storage: BreakerStorage) -> None:
    """Below min_calls nothing trips; at 2 of 4 failed (rate 0.5) it opens for open_s."""
    clock = Clock()
    breaker = Breaker("b", POLICY, storage=storage, clock=clock)
    assert breaker.record(ok=False) == "closed"
    assert breaker.record(ok=True) == "closed"
    assert breaker.record(ok=True) == "closed"
    assert breaker.record(ok=False) == "open"
    assert breaker.check() == (False, clock.now + 10)
    assert breaker.status().reason == "2/4 failed in 60s"


def test_outcomes_older_than_the_window_do_not_count(storage: BreakerStorage) -> None:
    """Failures that slid out of the window are forgotten."""
    clock = Clock()
    breaker = Breaker("b", POLICY, storage=storage, clock=clock)
    for _ in range(3):
        breaker.record(ok=False)
    clock.now += 61
    assert breaker.record(ok=False) == "closed"  # 1 in the window, below min_calls
    for _ in range(3):
        breaker.record(ok=True)
    assert breaker.state == "closed"  # 1 of 4 failed: under the rate


def test_after_open_s_one_probe_at_a_time_then_its_outcome_decides(
    storage: BreakerStorage,
) -> None:
    """Open → (open_s later) half-open with one leased probe → closed, or open again."""
    breaker, clock = tripped(storage)
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.available()
    assert breaker.allow(), "the probe"
    assert breaker.check() == (False, clock.now + 5), "a second caller waits for the probe"
    assert not breaker.available()
    assert breaker.record(ok=False) == "open", "the probe failed: open again"
    assert breaker.check() == (False, clock.now + 10)
    clock.now += 10
    assert breaker.allow()
    assert breaker.record(ok=True) == "closed"
    assert breaker.allow()
    assert breaker.record(ok=False) == "closed", "closing started a fresh window"


def test_a_probe_that_never_reports_frees_its_lease(storage: BreakerStorage) -> None:
    """A lost probe does not wedge the breaker: after probe_lease_s another may probe."""
    breaker, clock = tripped(storage)
    clock.now += 10
    assert breaker.allow()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_breakers_are_kept_apart_by_name_and_reset_closes(storage: BreakerStorage) -> None:
    """Two names share a storage without sharing a state; reset empties the window too."""
    clock = Clock()
    one = Breaker("one", POLICY, storage=storage, clock=clock)
    two = Breaker("two", POLICY, storage=storage, clock=clock)
    for _ in range(4):
        one.record(ok=False)
    assert (one.state, two.state) == ("open", "closed")
    one.reset()
    assert one.state == "closed"
    assert one.record(ok=False) == "closed"


def test_failures_in_a_row_policy_counts_a_streak() -> None:
    """window_s=inf, failure_rate=1: open after min_calls failures in a row (the
    endpoints' rule); a success in between keeps it closed."""
    clock = Clock()
    streak = BreakerPolicy(window_s=math.inf, min_calls=3, failure_rate=1.0, open_s=30)
    breaker = Breaker("e", streak, clock=clock)
    for ok in (False, False, True):
        assert breaker.record(ok=ok) == "closed"
    breaker.reset()
    for _ in range(2):
        assert breaker.record(ok=False) == "closed"
    assert breaker.record(ok=False) == "open"
    assert breaker.status().reason == "3/3 failed in a row"


def test_bad_policies_are_refused_naming_the_field() -> None:
    """A breaker that could never open, or never close, is refused when it is built."""
    with pytest.raises(ValueError, match="min_calls"):
        BreakerPolicy(min_calls=0)
    with pytest.raises(ValueError, match="failure_rate"):
        BreakerPolicy(failure_rate=1.5)
    with pytest.raises(ValueError, match="open_s"):
        BreakerPolicy(open_s=math.inf)


def test_endpoint_breaker_opens_after_a_streak_and_its_probe_decides(db_url: str) -> None:
    """The endpoint row's breaker: threshold failures in a row open it; a success while
    open does not close it early; once open_s is over the next outcome is the probe: a
    failure reopens it, a success closes it and clears the delay banner."""
    store = Store.open(db_url)
    try:
        eid = store.endpoints.create(
            tenant_id="default", url="http://127.0.0.1:9/hook", topics=["*"], secrets=["whsec_x"]
        ).id
        assert not store.endpoints.record_failure(eid, threshold=3, open_s=600)
        assert store.endpoints.get(eid).delayed_since is not None
        store.endpoints.record_success(eid)
        assert store.endpoints.get(eid).delayed_since is None
        assert not store.endpoints.record_failure(eid, threshold=3, open_s=600)
        assert not store.endpoints.record_failure(eid, threshold=3, open_s=600)
        assert store.endpoints.record_failure(eid, threshold=3, open_s=600)
        opened = store.endpoints.get(eid)
        assert opened.breaker_open_until is not None
        assert opened.breaker_failures == 0  # the window starts afresh once open
        store.endpoints.record_success(eid)  # a send leased before it opened
        assert store.endpoints.get(eid).breaker_open_until == opened.breaker_open_until

        other = store.endpoints.create(
            tenant_id="default", url="http://127.0.0.1:9/other", topics=["*"], secrets=["whsec_y"]
        ).id
        for _ in range(2):  # open_s 0: open, and already due for its probe
            store.endpoints.record_failure(other, threshold=2, open_s=0.0)
        first = store.endpoints.get(other).breaker_open_until
        assert first is not None
        store.endpoints.record_failure(other, threshold=2, open_s=0.0)  # the probe failed
        again = store.endpoints.get(other).breaker_open_until
        assert again is not None
        assert again >= first
        store.endpoints.record_success(other)  # the next probe succeeded
        closed = store.endpoints.get(other)
        assert (closed.breaker_open_until, closed.breaker_failures) == (None, 0)
        assert closed.delayed_since is None
    finally:
        store.close()
