"""Telling "the database is unreachable" from other errors, and the backoff loops use."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from structlog.testing import capture_logs

from portwright.store import OutageBackoff, create_engine, is_database_unavailable


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connecting is refused


def _error_of(engine: sa.Engine, sql: str = "SELECT 1") -> Exception:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    except Exception as exc:  # the error itself is what the test looks at
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no error")


def test_a_refused_postgres_connection_is_unavailable() -> None:
    """A PostgreSQL server that refuses connections: unavailable (503, retry later)."""
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_refused_port()}/x")
    assert is_database_unavailable(_error_of(engine))


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    """SQLite's analogue: the database file cannot be opened (its directory is gone)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gone' / 'app.sqlite'}")
    assert is_database_unavailable(_error_of(engine))


def test_bad_sql_is_not_unavailable(tmp_path: Path) -> None:
    """A bug is not an outage: it must not be answered 'retry later'."""
    engine = create_engine(f"sqlite:///{tmp_path / 'app.sqlite'}")
    error = _error_of(engine, "SELECT nope FROM nowhere")
    assert not is_database_unavailable(error)
    assert not is_database_unavailable(ValueError("x"))


def test_wrapped_database_errors_are_recognised() -> None:
    """An error raised from an unavailable database (`raise … from exc`) counts too."""
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_refused_port()}/x")
    wrapped = RuntimeError("step failed")
    wrapped.__cause__ = _error_of(engine)
    assert is_database_unavailable(wrapped)


def test_backoff_logs_an_outage_once_doubles_and_says_when_it_is_over() -> None:
    """One line when the outage starts (not one per round), waits doubling up to the cap,
    and one line when a round succeeds again."""
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_refused_port()}/x")
    error = _error_of(engine)
    backoff = OutageBackoff(structlog.get_logger("t"), "janitor", first_s=1.0, cap_s=4.0)
    with capture_logs() as logs:
        delays = [backoff.failed(error) for _ in range(5)]
        backoff.ok()
        backoff.ok()
    for delay, base in zip(delays[:3], (1.0, 2.0, 4.0), strict=True):  # doubling, ±20 % jitter
        assert base * 0.8 <= delay <= base * 1.2, delays
    assert all(d <= 4.0 * 1.2 for d in delays)
    events = [entry["event"] for entry in logs]
    assert events == [
        "database unreachable; retrying with backoff",
        "database reachable again; carrying on",
    ]
    assert "Connection refused" in logs[0]["error"]
    assert logs[0]["loop"] == "janitor"


def test_backoff_says_at_once_when_the_outages_cause_changes() -> None:
    """A connection the outage cut is the first line's cause; the refused connections after
    it get one line of their own at once (not only at the 30 s reminder), and the same cause
    again none."""
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_refused_port()}/x")
    refused = _error_of(engine)
    cut = sa.exc.OperationalError(
        "SELECT 1", {}, Exception("consuming input failed: server closed the connection")
    )
    backoff = OutageBackoff(structlog.get_logger("t"), "janitor", first_s=0.1, cap_s=0.2)
    with capture_logs() as logs:
        backoff.failed(cut)
        for _ in range(5):
            backoff.failed(refused)
        backoff.failed(cut)
        backoff.ok()
    events = [entry["event"] for entry in logs]
    assert events == [
        "database unreachable; retrying with backoff",
        "database still unreachable; retrying with backoff",
        "database reachable again; carrying on",
    ]
    assert "server closed the connection" in logs[0]["error"]
    assert "Connection refused" in logs[1]["error"]
    # a new outage says its first cause again
    with capture_logs() as logs:
        backoff.failed(refused)
    assert [entry["error"] for entry in logs] == [logs[0]["error"]]
    assert "Connection refused" in logs[0]["error"]


def test_backoff_logs_other_failures_with_their_traceback() -> None:
    """A failure that is not an outage is logged in full every time (it is a bug)."""
    backoff = OutageBackoff(structlog.get_logger("t"), "relay")
    with capture_logs() as logs:
        backoff.failed(ValueError("boom"))
        backoff.failed(ValueError("boom"))
    assert [entry["event"] for entry in logs] == ["loop round failed; retrying"] * 2
    assert all(isinstance(entry["exc_info"], ValueError) for entry in logs)


@pytest.mark.parametrize("first_s", [0.1, 0.5])
def test_backoff_never_waits_past_its_cap(first_s: float) -> None:
    """However long the outage, the loop looks again within cap_s (+ jitter)."""
    backoff = OutageBackoff(structlog.get_logger("t"), "hub", first_s=first_s, cap_s=2.0)
    with capture_logs():
        delays = [backoff.failed(sa.exc.TimeoutError("pool")) for _ in range(40)]
    assert max(delays) <= 2.0 * 1.2
