"""Helpers the benchmarks share: fresh PostgreSQL databases, the static catalogue with its
rate limit lifted, real `portwright worker` processes, and the machine's CPU and memory.

Imported by the scripts beside it (each puts this directory on `sys.path` by being run
from it); not part of the package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_POSTGRES = os.environ.get(
    "PORTWRIGHT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"
)


# -- databases ---------------------------------------------------------------------------


def pg_admin(base: str) -> Any:
    """An AUTOCOMMIT engine on the server's `postgres` database; exits with a clear message
    when the server is unreachable."""
    import sqlalchemy as sa

    url = base.replace("postgresql://", "postgresql+psycopg://", 1).rstrip("/") + "/postgres"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        raise SystemExit(
            f"PostgreSQL at {base} is unreachable ({exc.orig}); "
            "pass --postgres URL or run on SQLite only"
        ) from exc
    return engine


@contextlib.contextmanager
def fresh_pg_database(base: str, prefix: str, admin: Any | None = None) -> Iterator[str]:
    """A new, empty database on the server at `base` (its URL, `postgresql://…/name`),
    dropped on exit."""
    import sqlalchemy as sa

    own = admin is None
    admin = admin if admin is not None else pg_admin(base)
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base.rstrip('/')}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if own:
            admin.dispose()


# -- the sandbox's static catalogue ----------------------------------------------------------


class RequestCounter:
    """Counts the requests a sandbox service answered (thread-safe: the world has its thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def wrap(self, app: Any) -> Any:
        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                with self._lock:
                    self.count += 1
            await app(scope, receive, send)

        return counted


def static_site(counter: RequestCounter | None = None) -> list[Any]:
    """The sandbox's `scrape-static` catalogue (5,000 products) with its per-identity rate
    limit lifted (option `rate_per_s` 0: the site's token bucket lets everything through),
    so a benchmark measures the fetcher, not the site's limit; `counter` counts its requests."""
    from portwright.sandbox import scrape

    (spec,) = [s for s in scrape.specs() if s.name == "scrape-static"]
    spec = dataclasses.replace(spec, options={**spec.options, "rate_per_s": 0})
    if counter is not None:
        build = spec.build
        spec = dataclasses.replace(spec, build=lambda ctx: counter.wrap(build(ctx)))
    return [spec]


STATIC_PRODUCTS = 5000


def static_urls(site: str, items: int) -> list[str]:
    """`items` distinct product URLs of the static site (past its 5,000 products, the same
    pages again with a `?copy=N` query, which the site ignores)."""
    urls = []
    for i in range(items):
        copy, product = divmod(i, STATIC_PRODUCTS)
        urls.append(f"{site}/product/{product + 1}" + (f"?copy={copy}" if copy else ""))
    return urls


# -- real worker processes -------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """A process's resident set size (VmRSS), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


class Workers:
    """N `portwright worker` subprocesses (the CLI, its whole stack), each with a stable
    worker id; `kill(i)` is SIGKILL, `restart(i)` starts worker i again under the same id,
    `stop()` is SIGTERM, then SIGKILL after 20 s."""

    def __init__(self, count: int, tag: str, env: dict[str, str], log: Path) -> None:
        self.ids = [f"{tag}-{index}" for index in range(count)]
        self.env = env
        self.log = log
        self.procs: list[subprocess.Popen[bytes]] = []
        self.retired: list[subprocess.Popen[bytes]] = []  # killed ones, for their CPU time

    def _spawn(self, worker_id: str) -> subprocess.Popen[bytes]:
        command = [str(Path(sys.executable).parent / "portwright"), "worker"]
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [*command, "--worker-id", worker_id],
                env={**self.env, "PORTWRIGHT_WORKER_ID": worker_id},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start(self) -> None:
        self.procs = [self._spawn(worker_id) for worker_id in self.ids]

    def wait_ready(
        self,
        store: Any,
        timeout_s: float,
        ids: list[str] | None = None,
        *,
        settle_s: float = 0.0,
    ) -> None:
        """Until every worker (or those in `ids`) has heartbeated as alive; with
        `settle_s` (a heartbeat interval), until each has beaten again `settle_s` after
        all were alive: its round before that one counted them all, and so wrote the
        chunk queue's worker share for this many workers (workers started together can
        each count only itself at first and write the share of a worker alone)."""
        deadline = time.monotonic() + timeout_s
        wanted = set(ids if ids is not None else self.ids)
        since: float | None = None
        while time.monotonic() < deadline:
            rows = [w for w in store.workers.all() if w.status == "alive" and w.id in wanted]
            if since is None and wanted <= {w.id for w in rows}:
                since = time.time()
            if since is not None and all(w.heartbeat_at >= since + settle_s for w in rows):
                return
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a worker exited during start-up; see {self.log}")
            time.sleep(0.2)
        raise TimeoutError(f"workers not ready after {timeout_s:g}s; see {self.log}")

    def kill(self, index: int) -> None:
        """SIGKILL worker `index` (no shutdown of any kind) and reap it."""
        proc = self.procs[index]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.retired.append(proc)

    def restart(self, index: int) -> None:
        self.procs[index] = self._spawn(self.ids[index])

    def rss(self) -> list[int]:
        return [rss_bytes(p.pid) if p.poll() is None else 0 for p in self.procs]

    def cpu_s(self) -> float:
        """The worker processes' CPU time so far (the live ones)."""
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
