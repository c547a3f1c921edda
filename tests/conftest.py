"""Shared fixtures. `db_url` runs a test on SQLite and on a fresh PostgreSQL database.

PostgreSQL comes from PORTWRIGHT_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432).
If it is unreachable the Postgres half of the suite fails loudly; set
PORTWRIGHT_TEST_SKIP_POSTGRES=1 to skip it deliberately on a machine without one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from portwright.adapters import AdapterRegistry
from portwright.composition import build_runtime
from portwright.orchestrator import JobService, Runtime
from portwright.settings import Settings

PG_BASE = os.environ.get("PORTWRIGHT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
SKIP_PG = os.environ.get("PORTWRIGHT_TEST_SKIP_POSTGRES") == "1"
AS_APP = os.environ.get("PORTWRIGHT_TEST_POSTGRES_AS_APP") == "1"


def _pg_admin() -> sa.Engine:
    return sa.create_engine(
        PG_BASE.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
        isolation_level="AUTOCOMMIT",
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty application database URL: SQLite in tmp_path, or a fresh Postgres database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.sqlite'}"
        return
    if SKIP_PG:
        pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
    yield from pg_database("pw_test")


def pg_database(prefix: str) -> Iterator[str]:
    """A fresh Postgres database's URL. With PORTWRIGHT_TEST_POSTGRES_AS_APP=1 it belongs to
    a fresh non-superuser role the URL connects as, so row-level security applies."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    role = f"pw_app_{secrets.token_hex(4)}" if AS_APP else None
    admin = _pg_admin()
    with admin.connect() as conn:
        if role:
            conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
        else:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        if role:
            scheme, rest = PG_BASE.split("://", 1)
            yield f"{scheme}://{role}@{rest.rsplit('@', 1)[-1]}/{name}"
        else:
            yield f"{PG_BASE}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if role:
                conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own data dir and database, fast heartbeats and polling."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        worker_id=f"test-{secrets.token_hex(3)}",
        heartbeat_interval_s=0.3,
        dead_worker_after_s=2.0,
        queue_polling_interval_s=0.05,
        log_json=False,
    )


RuntimeFactory = Callable[..., Runtime]


def _off_loop(fn: Callable[[], object]) -> None:
    """Run `fn` on a fresh thread (no event loop there) and wait for it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn).result()


@pytest.fixture
def make_runtime(settings: Settings) -> Iterator[RuntimeFactory]:
    """Start a Runtime (DBOS is a process singleton: one at a time); stopped at teardown."""
    started: list[Runtime] = []

    def make(registry: AdapterRegistry, **kw: object) -> Runtime:
        runtime = build_runtime(kw.pop("settings", settings), registry, **kw)  # type: ignore[arg-type]
        _off_loop(runtime.start)  # DBOS refuses some calls inside a running event loop
        started.append(runtime)
        return runtime

    yield make
    for runtime in reversed(started):
        _off_loop(runtime.stop)


@pytest.fixture
def service_for(make_runtime: RuntimeFactory) -> Callable[..., JobService]:
    def make(registry: AdapterRegistry, **kw: object) -> JobService:
        return JobService(make_runtime(registry, **kw))

    return make
