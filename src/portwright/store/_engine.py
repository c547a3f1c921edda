"""Engines with deliberate settings: SQLite in WAL mode, PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from portwright.store._rows import loads_json

__all__ = [
    "CONNECT_TIMEOUT_S",
    "PG_CONNECT_ARGS",
    "POOL_TIMEOUT_S",
    "create_engine",
    "is_sqlite",
]

# The database unreachable must be answered in about two seconds, not hang a request or a
# worker's loop: a new PostgreSQL connection gives up after CONNECT_TIMEOUT_S (libpq's
# minimum is 2; a refused connection fails at once), and a request waits at most
# POOL_TIMEOUT_S for a pooled connection (SQLAlchemy's default is 30 s) before it fails with
# a TimeoutError, which the gateway answers 503 + Retry-After like a refused connection.
# TCP keepalives notice a connection whose server vanished without closing it.
CONNECT_TIMEOUT_S = 2
POOL_TIMEOUT_S = 2.0
PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

# WAL lets readers (gateway, console, CLI) proceed while a worker writes;
# synchronous=NORMAL is durable across process crashes in WAL mode (only an OS
# crash can lose the last commits); busy_timeout rides out writer contention
# instead of failing with "database is locked"; BEGIN IMMEDIATE (via the
# driver's isolation_level) takes the write lock up front so two writers never
# deadlock upgrading a read lock.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-16000",
)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(
    url: str, *, pool_size: int = 10, pool_timeout: float = POOL_TIMEOUT_S, **kwargs: Any
) -> sa.Engine:
    """An engine for the app or DBOS system database, configured for concurrent workers
    and bounded waits (see CONNECT_TIMEOUT_S, POOL_TIMEOUT_S). JSON columns are read with
    `loads_json` (what `json.loads` reads, for less CPU) unless `json_deserializer` is
    given; written as SQLAlchemy writes them (`json.dumps`)."""
    kwargs.setdefault("json_deserializer", loads_json)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size * 2,
            pool_timeout=pool_timeout,
            pool_pre_ping=False,
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    # A connect_timeout in the URL (…?connect_timeout=10) wins over ours.
    query = make_url(url).query
    connect_args = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in query}
    return sa.create_engine(
        url,
        connect_args={**connect_args, **kwargs.pop("connect_args", {})},
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        **kwargs,
    )


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = "IMMEDIATE"
    cursor = dbapi_conn.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
