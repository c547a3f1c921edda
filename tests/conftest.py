"""Shared fixtures. `db_url` runs a test on SQLite and on a fresh PostgreSQL database.

PostgreSQL comes from PORTWRIGHT_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432).
If it is unreachable the Postgres half of the suite fails loudly; set
PORTWRIGHT_TEST_SKIP_POSTGRES=1 to skip it deliberately on a machine without one.

A test that uses `settings` (every runtime test: `make_runtime`, `service_for`, the stacks
built on them) gets its database already migrated: a copy of a template this test process
migrated once (`portwright migrate`'s work: the app's Alembic heads, DBOS's system tables and
its checkpoint table) — the SQLite files copied, a PostgreSQL database created `TEMPLATE` it.
Opening the store and launching DBOS still run their migrations, which find nothing to do.
A test that uses `db_url` without `settings` gets an EMPTY database (the migration tests, and
the `portwright …` subprocess tests that start on a new database); so does a test marked
`empty_db`, and every test under PORTWRIGHT_TEST_FRESH_DB=1 (the old way, for comparison).

A test's PostgreSQL database is dropped after it on this test process's dropper thread, not
in its teardown: PostgreSQL checkpoints for every DROP DATABASE (a second or two on a busy
server), which the next test need not wait for. Every drop is done, and any that failed is
an error, before the session ends (`_pg_dropper`). Likewise each PostgreSQL database (a
copy of the template, or an empty one) is made while the test before it runs (`Spares`),
not in the setup of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from portwright.adapters import AdapterRegistry
from portwright.composition import build_runtime
from portwright.orchestrator import JobService, Runtime
from portwright.settings import Settings

# httpx's module functions (`httpx.post(...)`, ~140 calls in these tests) and clients made
# without a timeout wait 30 s here, not httpx's 5 s default: CI runs three test files at once
# on two cores, where a freshly started stack's first answer has taken longer than 5 s (a
# ReadTimeout that says nothing about the code under test). Waits stay bounded: every test
# has its own deadlines, and pytest-timeout its 300 s.
_HTTPX_DEFAULT = httpx._config.DEFAULT_TIMEOUT_CONFIG  # the object httpx's defaults refer to
_HTTPX_DEFAULT.connect = _HTTPX_DEFAULT.read = _HTTPX_DEFAULT.write = _HTTPX_DEFAULT.pool = 30.0

PG_BASE = os.environ.get("PORTWRIGHT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
SKIP_PG = os.environ.get("PORTWRIGHT_TEST_SKIP_POSTGRES") == "1"
AS_APP = os.environ.get("PORTWRIGHT_TEST_POSTGRES_AS_APP") == "1"


FRESH_DB = os.environ.get("PORTWRIGHT_TEST_FRESH_DB") == "1"
DATA_DIR = "data"  # `settings`' data_dir under tmp_path: SQLite's DBOS system database is there
SQLITE_FILES = ("app.sqlite", f"{DATA_DIR}/dbos.sqlite")  # the app's, DBOS's


def _pg_admin() -> sa.Engine:
    return sa.create_engine(
        PG_BASE.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
        isolation_level="AUTOCOMMIT",
    )


def _wants_migrated(request: pytest.FixtureRequest) -> bool:
    """Whether this test starts on a migrated copy: it uses `settings` (directly or through
    a fixture) and is not marked `empty_db`."""
    return (
        not FRESH_DB
        and "settings" in request.fixturenames
        and request.node.get_closest_marker("empty_db") is None
    )


class Templates:
    """This test process's migrated databases, made on first use and copied per test.

    Each lives for one session and is named for it, so it can never be stale: it is migrated
    by this checkout's code, and a test that changes the schema's plugins still has its
    store migrate the copy the rest of the way."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._sqlite: Path | None = None
        self._postgres: str | None = None

    @staticmethod
    def _migrate(database_url: str, data_dir: Path) -> None:
        from portwright.orchestrator import migrate_databases

        migrate_databases(Settings(database_url=database_url, data_dir=data_dir))

    def sqlite_into(self, tmp_path: Path) -> None:
        """Copy the migrated SQLite files (the app's, DBOS's) to where `settings` puts them."""
        if self._sqlite is None:
            self._sqlite = self.root / "sqlite"
            self._migrate(f"sqlite:///{self._sqlite / SQLITE_FILES[0]}", self._sqlite / DATA_DIR)
            for name in SQLITE_FILES:  # everything in the main file: each copy is one file
                conn = sqlite3.connect(self._sqlite / name)
                try:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    conn.close()
                wal = self._sqlite / f"{name}-wal"
                assert not wal.exists() or not wal.stat().st_size, f"{wal} is not checkpointed"
        for name in SQLITE_FILES:
            target = tmp_path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._sqlite / name, target)

    def postgres(self) -> str:
        """The name of the migrated PostgreSQL template (no connection left open to it)."""
        if self._postgres is None:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            name = f"pw_tmpl_{worker}_{secrets.token_hex(4)}"
            admin = _pg_admin()
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                self._postgres = name
                self._migrate(f"{PG_BASE}/{name}", self.root / "pg-data")
            finally:
                admin.dispose()
        return self._postgres

    def drop(self) -> None:
        if self._postgres is None:
            return
        SPARES.finish()  # no copy of the template still being made
        admin = _pg_admin()
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self._postgres}" WITH (FORCE)'))
        finally:
            admin.dispose()


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    templates = Templates(tmp_path_factory.mktemp("db-templates"))
    try:
        yield templates
    finally:
        templates.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, db_templates: Templates
) -> Iterator[str]:
    """An application database URL: SQLite in tmp_path, or a fresh Postgres database. Empty,
    unless the test uses `settings` (then migrated: see the module's docstring)."""
    migrated = _wants_migrated(request)
    if request.param == "sqlite":
        if migrated:
            db_templates.sqlite_into(tmp_path)
        yield f"sqlite:///{tmp_path / SQLITE_FILES[0]}"
        return
    if SKIP_PG:
        pytest.skip("PORTWRIGHT_TEST_SKIP_POSTGRES=1")
    template = db_templates.postgres() if migrated and not AS_APP else None
    yield from pg_database("pw_test", template=template)


def pg_database(prefix: str, *, template: str | None = None) -> Iterator[str]:
    """A fresh Postgres database's URL (a copy of `template`, if given). With
    PORTWRIGHT_TEST_POSTGRES_AS_APP=1 it belongs to a fresh non-superuser role the URL
    connects as, so row-level security applies (and no template is used: its tables would
    belong to the superuser)."""
    role = f"pw_app_{secrets.token_hex(4)}" if AS_APP else None
    if not role:  # an empty one is a copy of template1, as CREATE DATABASE makes it
        name = SPARES.take(prefix, template or "template1")
    else:
        name = f"{prefix}_{secrets.token_hex(4)}"
        admin = _pg_admin()
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
        finally:
            admin.dispose()
    try:
        if role:
            scheme, rest = PG_BASE.split("://", 1)
            yield f"{scheme}://{role}@{rest.rsplit('@', 1)[-1]}/{name}"
        else:
            yield f"{PG_BASE}/{name}"
    finally:
        DROPPER.drop(name, role)


class Dropper:
    """Drops databases (and their roles) one after another on a thread of its own, so that
    a test's teardown does not wait for the checkpoint each DROP DATABASE forces. `finish`
    waits for every drop asked for and returns the ones that failed."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, str | None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._failed: list[str] = []

    def drop(self, name: str, role: str | None = None) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-dropper", daemon=True)
            self._thread.start()
        self._queue.put((name, role))

    def _run(self) -> None:
        admin = _pg_admin()
        try:
            while (job := self._queue.get()) is not None:
                name, role = job
                try:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                        if role:
                            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
                except Exception as exc:  # reported by `finish`, at the session's end
                    self._failed.append(f"{name}: {exc!r}")
        finally:
            admin.dispose()

    def finish(self) -> list[str]:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        failed, self._failed = self._failed, []
        return failed


DROPPER = Dropper()


def _copy_of(prefix: str, template: str) -> str:
    """A new database made `TEMPLATE template`: its name."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    return name


class Spares:
    """Each copy of a template is made while the test before it runs: `take` hands out the
    copy made ahead (or makes one, the first time) and starts making the next on a thread
    of its own. A copy is a fresh database all the same; `finish` drops the one left."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: dict[tuple[str, str], Future[str]] = {}

    def take(self, prefix: str, template: str) -> str:
        ahead = self._ahead.pop((prefix, template), None)
        name = None
        if ahead is not None:
            with contextlib.suppress(Exception):  # failed ahead: made here, failing loudly
                name = ahead.result()
        if name is None:
            name = _copy_of(prefix, template)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-spare")
        self._ahead[(prefix, template)] = self._pool.submit(_copy_of, prefix, template)
        return name

    def finish(self) -> None:
        for ahead in self._ahead.values():
            with contextlib.suppress(Exception):  # not made: nothing to drop
                DROPPER.drop(ahead.result())
        self._ahead.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


SPARES = Spares()


@pytest.fixture(scope="session", autouse=True)
def _pg_dropper() -> Iterator[None]:
    """Torn down after every other fixture: the session's drops are all done, none failed."""
    yield
    SPARES.finish()
    failed = DROPPER.finish()
    assert not failed, f"PostgreSQL databases not dropped: {failed}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own data dir and database, fast heartbeats and polling."""
    return Settings(
        data_dir=tmp_path / DATA_DIR,
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


# -- the order files run in ------------------------------------------------------------------

DURATIONS = Path(__file__).with_name("durations.json")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In an xdist worker, the files that take longest first (tests/durations.json: seconds
    per file from a full run; `python -m tests.durations` refreshes it), each file's own order
    kept. `./run test` hands whole files to its workers in this order (`--dist loadfile
    --no-loadscope-reorder`), so the long files start early and the run does not end with one
    worker alone on a long file. Only the order changes: a file missing from the table counts
    as one of average length. Without xdist the order is pytest's (grouped by fixture)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    weights: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    usual = sum(weights.values()) / len(weights) if weights else 0.0
    items.sort(key=lambda item: -weights.get(item.nodeid.split("::", 1)[0], usual))
