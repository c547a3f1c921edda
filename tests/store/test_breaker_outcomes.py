"""A breaker's window in `breaker_outcomes`: a batch's outcomes as counted rows (0020), on
SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from alembic import command

from portwright.resilience import Breaker, BreakerPolicy
from portwright.store import SqlBreakerStorage, Store, create_engine, migrate
from portwright.store._breakers import _SqlWindow
from portwright.store._migrate import _config
from portwright.store._schema import breaker_outcomes

# the table as 0019 left it (this code's has `calls`)
OUTCOMES_0019 = sa.table(
    "breaker_outcomes", sa.column("name"), sa.column("ok"), sa.column("at"), sa.column("id")
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _rows(engine: sa.Engine, name: str) -> list[tuple[bool, float, int]]:
    t = breaker_outcomes.c
    query = sa.select(t.ok, t.at, t.calls).where(t.name == name).order_by(t.id)
    with engine.connect() as conn:
        return [(bool(ok), at, calls) for ok, at, calls in conn.execute(query)]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_batchs_outcomes_are_one_row_each_and_trip_the_breaker_as_single_ones(
    db_url: str,
) -> None:
    """A batch of 60 successes and 2 failures is two rows counting 60 and 2 calls; the
    breaker judges by calls: 60 successes then failures open it at the 60th failure (60 of
    120 at a rate of 0.5), not before, as 60 single rows would."""
    store = Store.open(db_url)
    try:
        clock = Clock()
        storage = SqlBreakerStorage(store.engine, clock=clock)
        with store.engine.begin() as conn:
            storage.append_in(conn, "batch", [True] * 30 + [False, False] + [True] * 30, 5.0)
        assert _rows(store.engine, "batch") == [(True, 5.0, 60), (False, 5.0, 2)]

        policy = BreakerPolicy(window_s=60, min_calls=10, failure_rate=0.5, open_s=10)
        breaker = Breaker("b", policy, storage=storage, clock=clock)
        with store.engine.begin() as conn:
            storage.append_in(conn, "b", [True] * 60, clock.now)
        for _ in range(59):
            assert breaker.record(ok=False) == "closed"
        assert breaker.record(ok=False) == "open"
        assert breaker.status().reason == "60/120 failed in 60s"
    finally:
        store.close()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_outcomes_upgrade_to_counted_rows_and_downgrade_to_a_row_per_call(db_url: str) -> None:
    """Rows written at 0019 count one call each after 0020, as does a row written the 0019
    way afterwards (a previous release's writer); downgrading writes a row per call again,
    so the window of the previous release counts what this one counted."""
    engine = create_engine(db_url)
    try:
        migrate(engine, "0019")
        with engine.begin() as conn:
            conn.execute(
                OUTCOMES_0019.insert(),
                [{"name": "p", "ok": i % 3 > 0, "at": 1.0 + i} for i in range(6)],
            )
        migrate(engine)
        with engine.begin() as conn:  # a previous release's writer, after 0020
            conn.execute(OUTCOMES_0019.insert(), {"name": "p", "ok": False, "at": 9.0})
            SqlBreakerStorage.append_in(conn, "p", [True] * 4 + [False] * 3, 10.0)
        before = _rows(engine, "p")
        assert [calls for _, _, calls in before] == [1] * 7 + [4, 3]
        assert _counts(engine, "p", since=0) == (14, 6)
        with engine.begin() as conn:
            command.downgrade(_config(conn), "0019")
        assert "calls" not in {
            c["name"] for c in sa.inspect(engine).get_columns("breaker_outcomes")
        }
        with engine.connect() as conn:
            query = sa.select(OUTCOMES_0019.c.ok, OUTCOMES_0019.c.at).where(
                OUTCOMES_0019.c.name == "p"
            )
            after = sorted((bool(ok), at) for ok, at in conn.execute(query))
        assert after == sorted((ok, at) for ok, at, calls in before for _ in range(calls))
        migrate(engine)  # and up again: each row one call
        assert _counts(engine, "p", since=0) == (14, 6)
        assert _counts(engine, "p", since=9.5) == (7, 3)
    finally:
        engine.dispose()


def _counts(engine: sa.Engine, name: str, *, since: float) -> tuple[int, int]:
    """(calls, failures) at or after `since`, as the breaker's window reads them (deleting
    the rows older than `since`, as it does)."""
    with engine.begin() as conn:
        return _SqlWindow(conn, name).counts(since)


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_batchs_row_leaves_the_window_whole(db_url: str) -> None:
    """A batch's successes share their time: they leave the window together."""
    store = Store.open(db_url)
    try:
        now = time.time()
        with store.engine.begin() as conn:
            SqlBreakerStorage.append_in(conn, "w", [True] * 5, now - 100)
            SqlBreakerStorage.append_in(conn, "w", [False] * 2, now)
        assert _counts(store.engine, "w", since=now - 101) == (7, 2)
        assert _counts(store.engine, "w", since=now - 50) == (2, 2)
        assert _rows(store.engine, "w") == [(False, now, 2)]  # the batch's row deleted
    finally:
        store.close()
