"""Batch throughput (issue 14): 1,000 static URLs through Portwright's `POST /v1/batch`
against a bare fetcher and against Crawlee, in the same run, at the same concurrency.

The parent hosts the sandbox's `scrape-static` catalogue (its per-identity rate limit
lifted: option `rate_per_s` 0) and runs each system in its own child process on the same
N product URLs, at the same concurrency (`--concurrency`, 8):

- bare: one `curl_cffi` `AsyncSession`, N GETs at most `--concurrency` at once, no
  durability of any kind (the baseline);
- crawlee: Crawlee for Python's `ParselCrawler` (in-memory storage, concurrency pinned),
  the same child as `fleet_bench.py`'s static comparison; install it with
  `pip install -e '.[bench]'`;
- portwright: the stack `portwright up` runs (runtime with its workers and fleet, the
  gateway on uvicorn, the garbage collector tuned as `up` tunes it) on a fresh database
  (SQLite, PostgreSQL or both: `--database`), worker concurrency `--concurrency`;
  `POST /v1/batch` of the N URLs (engine http, at most 1,000 a request) through the
  gateway; "accepted" is the time to the last 202, "done" the time to the last item's end
  (its `finished_at`). Every item must have succeeded.

pages/s = N / the time from the first request to the last page. Rounds alternate the order
of the systems (`--rounds`); each round prints Portwright's ratio to bare and to Crawlee in
that round. Targets: at least 0.4 x bare, at least 1.5 x Crawlee.

`--split N` adds the deployed shape on the same databases and rounds: a `portwright api`
gateway, the relay and N `portwright worker` processes, each at `--concurrency` (the
per-site politeness cap, 8 requests at once, is per process: N workers may have up to
8N requests in flight to the site where the others have 8).

`--kill` runs the crash mode instead: `--workers` real `portwright worker` processes and a
`portwright api` gateway on one fresh database, a batch of `--items` URLs (10,000 in the
issue), one worker SIGKILLed once `--kill-at` of the items have ended and started again
under the same worker id `--restart-after` seconds later; then, from the database, every
item must have exactly one recorded result (one job per URL, ended SUCCEEDED with its own
page, one terminal event, no event recorded twice, one usage record), and the workers'
RSS is reported as the items ended (flat or not). It reads only what every item keeps
(jobs, job_events, usage_records), however the items are run.

Each Portwright run also reports its processes' CPU per item over the batch (from the POST
to the last item's end seen; `/proc/<pid>/stat`, 10 ms ticks): the one-process stack's (this
bench's polling included), or the gateway's, the relay's and the workers' together
(`cpu … µs/item` lines): the figure a loaded machine leaves usable when pages/s is not.

`--phases` prints where each Portwright run's time went, read from the databases after the
batch: each chunk workflow's first step start and last step end (seconds after the POST
began) and its worker, the steps' mean and longest durations, the first and last item's
end. `PWBENCH_AT_BATCH` (environment): a shell command started just before the batch's
POST, with the processes' pids in `PW_GATEWAY`, `PW_RELAY`, `PW_WORKERS` (comma-separated;
the deployed shape) or `PW_STACK` (the one-process stack), e.g. to profile one worker:
`PWBENCH_AT_BATCH='py-spy record --pid ${PW_WORKERS%%,*} --duration 3 --gil -o w.svg'`.
`PWBENCH_BEFORE_BATCH`: the same, but run to its end before the POST (60 s at most): what
must happen before the batch's first statement, e.g. `pg_stat_statements_reset()` and a
CPU snapshot (benchmarks/README.md, "PostgreSQL's CPU per batch item").

    python benchmarks/batch_bench.py                            # 1,000 URLs, both databases
    python benchmarks/batch_bench.py --items 1000 --rounds 3 --database sqlite
    python benchmarks/batch_bench.py --items 1000 --rounds 3 --split 2
    python benchmarks/batch_bench.py --kill --items 500 --database postgres
    python benchmarks/batch_bench.py --kill --items 10000 --database postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    DEFAULT_POSTGRES,
    RequestCounter,
    Workers,
    fresh_pg_database,
    pg_admin,
    static_site,
    static_urls,
)

HERE = Path(__file__).resolve().parent
ENDED = ("succeeded", "failed", "cancelled")
BATCH_MAX = 1000  # items per POST /v1/batch (the model's limit)
MASTER_KEY = "bench-master-key-" + "x" * 32
UNLIMITED = "10000000/minute"
POLL_S = 0.1
# While a batch runs: its done time is the last `finished_at` read, not when a poll saw it,
# so polling seldom costs no precision; each poll is a COUNT over the tenant's jobs in the
# measured process (the stack's GIL), ~4 % of its CPU at 0.1 s.
BATCH_POLL_S = 0.5
HEARTBEAT_S = 2.0  # the workers' heartbeat_interval_s (its default; the split run sets no other)
MB = 1024 * 1024
ANALYZE_ENV = "PWBENCH_ANALYZE_EVERY"
PHASES_ENV = "PWBENCH_PHASES"
CRAWLEE_HINT = "Crawlee is not installed: pip install -e '.[bench]' (crawlee==1.11.0)"


def _emit(payload: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(payload), flush=True)


# -- children: one system each ----------------------------------------------------------------


async def child_bare(urls: list[str], concurrency: int) -> dict[str, Any]:
    """N GETs through one curl_cffi AsyncSession, `concurrency` at once; nothing recorded."""
    from curl_cffi.requests import AsyncSession

    gate = asyncio.Semaphore(concurrency)
    ok = 0

    async with AsyncSession(max_clients=concurrency) as session:

        async def one(url: str) -> None:
            nonlocal ok
            async with gate:
                response = await session.get(url)
                ok += response.status_code == 200 and len(response.content) > 0

        began = time.perf_counter()
        await asyncio.gather(*(one(u) for u in urls))
        elapsed = time.perf_counter() - began
    return {"pages": len(urls), "ok": ok, "seconds": elapsed}


def child_crawlee(urls: list[str], concurrency: int) -> dict[str, Any]:
    """`fleet_bench.py`'s ParselCrawler child, on these URLs (it prints its own JSON)."""
    import io
    from contextlib import redirect_stdout

    from fleet_bench import child_crawlee as crawl

    out = io.StringIO()
    with redirect_stdout(out):
        asyncio.run(crawl("static", concurrency, urls))
    result: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    return {"pages": len(urls), "ok": result["ok"], "seconds": result["seconds"]}


def _settings(data_dir: Path, database_url: str, concurrency: int, allow: list[str]) -> Any:
    from pydantic import SecretStr

    from portwright.settings import Settings

    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        worker_id=f"batch-{secrets.token_hex(3)}",
        worker_concurrency=concurrency,
        url_allowlist=allow,
        log_json=False,
        log_level="WARNING",
        master_key=SecretStr(MASTER_KEY),
        rate_limit_default=UNLIMITED,
        rate_limit_write=UNLIMITED,
        api_key_cache_s=5.0,
    )


def _post_batches(api: httpx.Client, urls: list[str]) -> list[str]:
    """POST /v1/batch of `urls` (engine http), 1,000 a request; the job ids in order."""
    ids: list[str] = []
    for at in range(0, len(urls), BATCH_MAX):
        items = [{"url": url, "engine": "http"} for url in urls[at : at + BATCH_MAX]]
        reply = api.post("/v1/batch", json={"items": items})
        if reply.status_code != 202:
            raise RuntimeError(f"POST /v1/batch answered {reply.status_code}: {reply.text[:500]}")
        ids += [job["id"] for job in reply.json()["jobs"]]
    return ids


def _ended(engine: Any, tenant_id: str) -> tuple[int, float | None]:
    """How many of the tenant's jobs have ended, and the last `finished_at`."""
    import sqlalchemy as sa

    from portwright.store._schema import jobs

    query = sa.select(sa.func.count(), sa.func.max(jobs.c.finished_at)).where(
        jobs.c.tenant_id == tenant_id, jobs.c.status.in_(ENDED)
    )
    with engine.connect() as conn:
        count, last = conn.execute(query).one()
    return int(count), last


def _analyze(engine: Any) -> None:
    """ANALYZE DBOS's workflow table (PostgreSQL): what autovacuum does after bulk writes."""
    import sqlalchemy as sa

    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE dbos.workflow_status"))
            conn.commit()


def as_portwright_starts(settings: Any, loop: str | None = None) -> str:
    """What `portwright up` does before its stack starts: the event loop chosen
    (`portwright._loop.use_event_loop`, `loop` or the settings' `event_loop`). A tree
    without it (`--before-src` of an older commit) keeps asyncio's, as its own `up` did."""
    try:
        from portwright._loop import use_event_loop
    except ImportError:
        return "asyncio"
    return use_event_loop(loop or settings.event_loop)


def as_portwright_up(settings: Any) -> None:
    """What `portwright up` does once its stack has started: the garbage collector tuned
    (`portwright._heap.tune_collector`: start-up heap frozen, young passes rarer). A tree
    without it (`--before-src` of an older commit) runs as its own `up` did."""
    try:
        from portwright._heap import tune_collector
    except ImportError:
        return
    tune_collector(settings.gc_young_threshold)


def child_portwright(urls: list[str], concurrency: int, database_url: str) -> dict[str, Any]:
    """The one-process stack on `database_url` (empty: a fresh SQLite file), the batch
    through its gateway; accepted and done times."""
    from portwright.cli._stack import start_stack
    from portwright.gateway.auth import issue_key

    tmp = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    database_url = database_url or f"sqlite:///{tmp / 'app.sqlite'}"
    allow = [urls[0].split("/")[2]]  # the sandbox site's host:port
    settings = _settings(tmp / "data", database_url, concurrency, allow)
    as_portwright_starts(settings)
    stack = start_stack(settings, world=None)
    as_portwright_up(settings)
    store = stack.runtime.store
    issued = issue_key(store, tenant="bench", plan="enterprise")
    tenant = issued.record.tenant_id
    return _timed_batch(
        stack.gateway_url,
        issued.key,
        store,
        tenant,
        urls,
        settings.dbos_database_url,
        {"stack": [os.getpid()]},
    )


def _phases(store: Any, dbos_url: str, t0: float, ids: list[str]) -> dict[str, Any]:
    """Where a batch's time went, from what the databases keep (seconds after the POST
    began): each chunk workflow's start and end (its first step's start, its last step's end)
    and its executor, its steps' mean
    durations, and the first and last item's end. Read after the batch, outside it."""
    import sqlalchemy as sa

    since = int(t0 * 1000)
    schema = "dbos." if dbos_url.startswith("postgresql") else ""
    engine = sa.create_engine(dbos_url)
    try:
        with engine.connect() as conn:
            chunks = conn.execute(
                sa.text(
                    f"SELECT workflow_uuid, executor_id "
                    f"FROM {schema}workflow_status WHERE name LIKE 'portwright.chunk%' "
                    f"AND created_at >= :since"
                ),
                {"since": since},
            ).all()
            steps = conn.execute(
                sa.text(
                    f"SELECT workflow_uuid, function_name, started_at_epoch_ms, "
                    f"completed_at_epoch_ms FROM {schema}operation_outputs "
                    f"WHERE workflow_uuid IN (SELECT workflow_uuid FROM "
                    f"{schema}workflow_status WHERE name LIKE 'portwright.chunk%' "
                    f"AND created_at >= :since)"
                ),
                {"since": since},
            ).all()
    finally:
        engine.dispose()
    ends = sorted(
        job.finished_at for job in store.jobs.get_many(ids) if job.finished_at is not None
    )
    spans: dict[str, list[float]] = {}
    bounds: dict[str, list[float]] = {}  # chunk: its first step's start, its last's end
    for chunk, name, began, ended in steps:
        if began is None or ended is None:
            continue
        spans.setdefault(str(name).split(":")[0], []).append((ended - began) / 1000)
        first, last = bounds.get(chunk, (began, ended))
        bounds[chunk] = [min(first, began), max(last, ended)]
    return {
        "chunks": [
            {
                "executor": str(executor)[-12:],
                "start": round(bounds[chunk][0] / 1000 - t0, 3) if chunk in bounds else None,
                "end": round(bounds[chunk][1] / 1000 - t0, 3) if chunk in bounds else None,
            }
            for chunk, executor in sorted(chunks, key=lambda c: bounds.get(c[0], [0])[0])
        ],
        "steps": {
            name: {"n": len(v), "mean_s": round(statistics.fmean(v), 4), "max_s": max(v)}
            for name, v in sorted(spans.items())
        },
        "first_end": round(ends[0] - t0, 3) if ends else None,
        "last_end": round(ends[-1] - t0, 3) if ends else None,
    }


def _cpu_s(pids: list[int]) -> float:
    """The CPU seconds (user + system, every thread) the processes `pids` have used so far,
    from /proc (Linux; 0 elsewhere). The one-process stack is this process: its figure
    includes this bench's own polling of the database (a COUNT every BATCH_POLL_S)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _timed_batch(
    base: str,
    key: str,
    store: Any,
    tenant: str,
    urls: list[str],
    dbos_url: str = "",
    pids: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """A 3-URL warm-up batch (the first request's imports and caches) waited out, then the
    batch of `urls` through the gateway at `base`: accepted and done times, and statuses
    (with `dbos_url`, also where the time went: `_phases`)."""
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=3600) as api:
        warm = _post_batches(api, urls[:3])
        deadline = time.monotonic() + 120
        while _ended(store.engine, tenant)[0] < len(warm) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        names = {f"PW_{k.upper()}": ",".join(map(str, v)) for k, v in (pids or {}).items()}
        before_batch = os.environ.get("PWBENCH_BEFORE_BATCH")  # waited for: a reset, a snapshot
        if before_batch:
            env = {**os.environ, **names}
            subprocess.run(before_batch, shell=True, env=env, timeout=60, check=False)
        at_batch = os.environ.get("PWBENCH_AT_BATCH")  # a local probe: py-spy, perf, …
        if at_batch:
            subprocess.Popen(at_batch, shell=True, env={**os.environ, **names})
        cpu_began = {name: _cpu_s(group) for name, group in (pids or {}).items()}
        t0, began = time.time(), time.perf_counter()
        ids = _post_batches(api, urls)
        accepted = time.perf_counter() - began
    target = len(ids) + len(warm)
    deadline = time.monotonic() + 3600
    count, last = 0, None
    analyze_every = float(os.environ.get(ANALYZE_ENV, "0"))
    analyzed = time.monotonic()
    while time.monotonic() < deadline:
        count, last = _ended(store.engine, tenant)
        if count >= target:
            break
        if analyze_every and time.monotonic() - analyzed >= analyze_every:
            _analyze(store.engine)
            analyzed = time.monotonic()
        time.sleep(BATCH_POLL_S)
    cpu = {name: _cpu_s((pids or {})[name]) - was for name, was in cpu_began.items()}
    statuses = store.jobs.counts_by_status(tenant_id=tenant)
    statuses["succeeded"] = statuses.get("succeeded", 0) - len(warm)
    done = (last - t0) if last is not None and count >= target else None
    phases = _phases(store, dbos_url, t0, ids) if dbos_url and os.environ.get(PHASES_ENV) else {}
    return {
        "pages": len(urls),
        "ok": statuses.get("succeeded", 0),
        "accepted_s": accepted,
        "seconds": done,
        "statuses": statuses,
        "began_at": t0,  # wall clock, to line the run up with outside measurements
        "cpu_s": cpu,  # each process group's CPU from the POST to the last item's end seen
        **({"phases": phases} if phases else {}),
    }


def _process_env(database_url: str, tmp: Path, site: str, concurrency: int) -> dict[str, str]:
    """The environment of the CLI processes (gateway, relay, workers) on one database, the
    site `host:port` allowed, limits lifted; a bench key made with `portwright keys`."""
    return {
        **os.environ,
        "PORTWRIGHT_DATABASE_URL": database_url,
        "PORTWRIGHT_DATA_DIR": str(tmp / "data"),
        "PORTWRIGHT_URL_ALLOWLIST": json.dumps([site]),
        "PORTWRIGHT_WORKER_CONCURRENCY": str(concurrency),
        "PORTWRIGHT_MASTER_KEY": MASTER_KEY,
        "PORTWRIGHT_RATE_LIMIT_DEFAULT": UNLIMITED,
        "PORTWRIGHT_RATE_LIMIT_WRITE": UNLIMITED,
        "PORTWRIGHT_LOG_LEVEL": "WARNING",
    }


def _bench_key(env: dict[str, str]) -> str:
    """Migrate the database and make the bench tenant's key (enterprise plan)."""
    _cli(env, "migrate")
    key = _cli(env, "keys", "create", "--tenant", "bench", "--plan", "enterprise")
    return key.strip().splitlines()[-1]


def child_split(
    urls: list[str], concurrency: int, database_url: str, workers: int
) -> dict[str, Any]:
    """The deployed shape: a `portwright api` gateway, the relay (`python -m
    portwright.delivery`) and `workers` `portwright worker` processes on `database_url`
    (empty: a fresh SQLite file), each worker at `concurrency`; the batch through the
    gateway, timed as `child_portwright` times it."""
    from portwright.cli._stack import _free_port
    from portwright.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="batch-split-"))
    database_url = database_url or f"sqlite:///{tmp / 'app.sqlite'}"
    site = urls[0].split("/")[2]
    env = {
        **_process_env(database_url, tmp, site, concurrency),
        "PORTWRIGHT_API_KEY_CACHE_S": "5",
        "PORTWRIGHT_CHROMIUM": "none",
    }
    key = _bench_key(env)
    port = _free_port("127.0.0.1")
    log = tmp / "processes.log"
    procs: list[subprocess.Popen[bytes]] = []
    pool = Workers(workers, "split", env, log)
    store = Store.open(database_url, run_migrations=False)
    try:
        with log.open("ab") as out:
            bin_dir = Path(sys.executable).parent
            commands = (
                [str(bin_dir / "portwright"), "api", "--port", str(port)],
                [sys.executable, "-m", "portwright.delivery"],
            )
            procs.extend(
                subprocess.Popen(command, env=env, stdout=out, stderr=out) for command in commands
            )
        pool.start()
        pool.wait_ready(store, 180, settle_s=HEARTBEAT_S)
        tenant = store.tenants.ensure("bench").id
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=base, timeout=10) as probe:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if probe.get("/healthz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the gateway did not answer; see {log}")
                time.sleep(0.2)
        dbos_url = database_url
        if database_url.startswith("sqlite"):
            dbos_url = f"sqlite:///{(tmp / 'data' / 'dbos.sqlite').resolve()}"
        pids = {
            "gateway": [procs[0].pid],
            "relay": [procs[1].pid],
            "workers": [proc.pid for proc in pool.procs],
        }
        cpu = pool.cpu_s()
        result = _timed_batch(base, key, store, tenant, urls, dbos_url, pids)
        cpu = pool.cpu_s() - cpu  # the workers' CPU over the warm-up and the batch
        return {**result, "workers_cpu_s": cpu, "processes": f"api + relay + {workers} workers"}
    finally:
        pool.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        store.close()


def child_main(argv: list[str]) -> int:
    system, urls_file, concurrency, database_url = argv
    urls = json.loads(Path(urls_file).read_text())
    from portwright.observability import configure_logging
    from portwright.settings import Settings

    configure_logging(Settings(log_level="WARNING", log_json=False))
    if system == "bare":
        result = asyncio.run(child_bare(urls, int(concurrency)))
    elif system == "crawlee":
        result = child_crawlee(urls, int(concurrency))
    elif system.startswith("split"):
        workers = int(system.removeprefix("split") or 1)
        result = child_split(urls, int(concurrency), database_url, workers)
    else:
        result = child_portwright(urls, int(concurrency), database_url)
    _emit(result)
    sys.stdout.flush()
    os._exit(0)  # no orderly shutdown of a stack: its measurement is done


# -- the parent: the headline comparison -------------------------------------------------------


def _run_child(
    system: str,
    urls_file: Path,
    concurrency: int,
    database_url: str = "",
    analyze: float = 0,
    src: str = "",
) -> dict[str, Any]:
    """`system` in a child process; `src`: import `portwright` from that directory instead
    of this checkout (`--before-src`: the code before a change, in the same run)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", system]
    command += [str(urls_file), str(concurrency), database_url]
    paths = [str(HERE), *([src] if src else []), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), ANALYZE_ENV: str(analyze)}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=3700, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if not lines:
        return {"error": f"exit {done.returncode}", "stderr_tail": done.stderr[-3000:]}
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def compare(args: argparse.Namespace, databases: list[str]) -> list[dict[str, Any]]:
    from portwright.sandbox import SandboxWorld

    systems = ["bare"]
    if importlib.util.find_spec("crawlee") is not None:
        systems.append("crawlee")
    else:
        print(f"# {CRAWLEE_HINT}; running without it", file=sys.stderr)
    systems += [f"portwright-{db}" for db in databases]
    if args.before_src:  # the same databases on the code before a change, in the same run
        systems += [f"before-{db}" for db in databases]
    if args.split:  # the deployed shape: gateway, relay and N worker processes
        systems += [f"split{args.split}-{db}" for db in databases]
        if args.before_src:  # and on the code before a change
            systems += [f"before-split{args.split}-{db}" for db in databases]
    skip = tuple(name for name in args.skip.split(",") if name)
    systems = [system for system in systems if not skip or not system.startswith(skip)]
    results: list[dict[str, Any]] = []
    counter = RequestCounter()
    with (
        tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp,
        SandboxWorld(static_site(counter), seed=14) as world,
    ):
        urls = static_urls(world.url("scrape-static"), args.items)
        urls_file = Path(tmp) / "urls.json"
        urls_file.write_text(json.dumps(urls))
        admin = pg_admin(args.postgres) if "postgres" in databases else None
        for round_no in range(args.rounds):
            order = systems if round_no % 2 == 0 else systems[::-1]
            for system in order:
                print(f"… round {round_no} {system}", end="", file=sys.stderr, flush=True)
                load = os.getloadavg()[0]
                served = counter.count
                with contextlib.ExitStack() as stack:
                    url = ""
                    if system.endswith("-postgres"):
                        url = stack.enter_context(
                            fresh_pg_database(args.postgres, "pwbench_batch", admin)
                        )
                    rest = system.removeprefix("before-")
                    src = args.before_src if rest != system else ""
                    name = rest.split("-")[0]  # bare, crawlee, portwright or splitN
                    result = _run_child(
                        name if name.startswith("split") or not src else "portwright",
                        urls_file,
                        args.concurrency,
                        url,
                        args.analyze_every,
                        src,
                    )
                result |= {"system": system, "round": round_no, "load": load}
                result["requests"] = counter.count - served
                if result.get("seconds"):
                    result["pages_per_s"] = result["pages"] / result["seconds"]
                note = result.get("error") or f"{result.get('pages_per_s', 0):.1f} pages/s"
                print(f" {note}", file=sys.stderr, flush=True)
                results.append(result)
        if admin is not None:
            admin.dispose()
    return results


def _ratios(results: list[dict[str, Any]], system: str, base: str) -> list[float]:
    ok = {(r["system"], r["round"]): r for r in results if r.get("pages_per_s")}
    return [
        mine["pages_per_s"] / ok[(base, round_no)]["pages_per_s"]
        for (name, round_no), mine in sorted(ok.items())
        if name == system and (base, round_no) in ok
    ]


def render(args: argparse.Namespace, results: list[dict[str, Any]]) -> str:
    lines = [
        f"{args.items} static catalogue URLs (sandbox scrape-static, rate limit lifted), "
        f"concurrency {args.concurrency}, {os.cpu_count()} cores",
        "",
        f"{'round':>5}  {'system':22}{'accepted s':>11}{'done s':>9}{'pages/s':>10}"
        f"{'ok':>7}{'requests':>10}{'load':>6}",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"{r['round']:5}  {r['system']:22}failed: {r['error']}")
            continue
        accepted = f"{r['accepted_s']:.2f}" if "accepted_s" in r else "—"
        done = f"{r['seconds']:.2f}" if r.get("seconds") else "—"
        lines.append(
            f"{r['round']:5}  {r['system']:22}{accepted:>11}{done:>9}"
            f"{r.get('pages_per_s', 0):10.1f}{r['ok']:7}{r['requests']:10}{r['load']:6.1f}"
        )
    lines.append("")
    systems = sorted(
        {r["system"] for r in results if r["system"].startswith(("portwright", "before", "split"))}
    )
    for system in systems:
        for base, target in (("bare", 0.4), ("crawlee", 1.5)):
            ratios = _ratios(results, system, base)
            if ratios:
                listed = " ".join(f"{x:.3f}" for x in ratios)
                median = statistics.median(ratios)
                verdict = "meets" if median >= target else "below"
                lines.append(
                    f"{system} / {base}: {listed} (median {median:.3f}; target ≥ {target}: "
                    f"{verdict})"
                )
        before = (
            f"before-{system}"
            if system.startswith("split")
            else system.replace("portwright-", "before-")
        )
        ratios = _ratios(results, system, before) if before != system else []
        if ratios:
            listed = " ".join(f"{x:.2f}" for x in ratios)
            median = statistics.median(ratios)
            lines.append(f"{system} / {before}: {listed} (median {median:.2f})")
    lines.extend(_render_cpu(results))
    lines.extend(_render_phases(r) for r in results if r.get("phases"))
    for r in results:
        if r.get("statuses") and r["ok"] != r["pages"]:
            lines.append(f"PROBLEM round {r['round']} {r['system']}: {r['statuses']}")
        if "stderr_tail" in r:
            lines.append(f"--- round {r['round']} {r['system']} ---\n{r['stderr_tail']}")
    return "\n".join(lines)


def _render_cpu(results: list[dict[str, Any]]) -> list[str]:
    """Each system's CPU per item over the batch, per process group (µs), each round's and
    their median: the figure a loaded machine leaves usable when pages/s is not."""
    lines: list[str] = []
    systems = sorted({r["system"] for r in results if r.get("cpu_s")})
    for system in systems:
        runs = [r for r in results if r["system"] == system and r.get("cpu_s") and r["pages"]]
        for group in sorted({g for r in runs for g in r["cpu_s"]}):
            per = [r["cpu_s"][group] / r["pages"] * 1e6 for r in runs if group in r["cpu_s"]]
            listed = " ".join(f"{x:.0f}" for x in per)
            median = statistics.median(per)
            lines.append(f"cpu {system} {group}: {listed} µs/item (median {median:.0f})")
    return lines


def _render_phases(r: dict[str, Any]) -> str:
    """One system's `--phases` (seconds after the POST began)."""
    phases = r["phases"]
    chunks = ", ".join(
        f"{c['executor']} {c['start']:.3f}→{c['end']:.3f}"
        for c in phases["chunks"]
        if c["start"] is not None and c["end"] is not None
    )
    steps = ", ".join(
        f"{name} x{s['n']} mean {s['mean_s'] * 1000:.0f} ms (max {s['max_s'] * 1000:.0f})"
        for name, s in phases["steps"].items()
    )
    ends: dict[str, float] = {}  # each worker's last chunk's end
    for c in phases["chunks"]:
        if c["end"] is not None:
            ends[c["executor"]] = max(ends.get(c["executor"], 0.0), c["end"])
    skew = f"{max(ends.values()) - min(ends.values()):.3f}" if len(ends) > 1 else "—"
    cpu = f", workers' CPU {r['workers_cpu_s']:.2f} s" if "workers_cpu_s" in r else ""
    return (
        f"phases round {r['round']} {r['system']}: workers' last chunk ends {skew} s apart"
        f"{cpu}; accepted {r['accepted_s']:.3f}, first "
        f"item ended {phases['first_end']}, last {phases['last_end']}; chunks {chunks}; "
        f"steps {steps}"
    )


# -- the parent: kill mode ----------------------------------------------------------------------


def _cli(env: dict[str, str], *argv: str) -> str:
    command = [str(Path(sys.executable).parent / "portwright"), *argv]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"portwright {' '.join(argv)} failed: {done.stderr[-2000:]}")
    return done.stdout


def verify(engine: Any, tenant_id: str, ids: list[str], urls: list[str]) -> dict[str, Any]:
    """From the database: does every item have exactly one recorded result?"""
    import sqlalchemy as sa

    from portwright.store._schema import job_events, jobs, usage_records

    wanted = dict(zip(ids, urls, strict=True))
    terminal: Counter[str] = Counter()
    usage: Counter[str] = Counter()
    twice = 0
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(jobs.c.id, jobs.c.status, jobs.c.state, jobs.c.input, jobs.c.output).where(
                jobs.c.tenant_id == tenant_id
            )
        ).all()
        for at in range(0, len(ids), 500):
            chunk = ids[at : at + 500]
            terminal.update(
                dict(
                    conn.execute(
                        sa.select(job_events.c.job_id, sa.func.count())
                        .where(
                            job_events.c.job_id.in_(chunk),
                            job_events.c.to_state.in_(("SUCCEEDED", "FAILED", "CANCELLED")),
                        )
                        .group_by(job_events.c.job_id)
                    ).all()
                )
            )
            usage.update(
                dict(
                    conn.execute(
                        sa.select(usage_records.c.job_id, sa.func.count())
                        .where(usage_records.c.job_id.in_(chunk))
                        .group_by(usage_records.c.job_id)
                    ).all()
                )
            )
            twice += len(
                conn.execute(
                    sa.select(job_events.c.job_id, job_events.c.seq)
                    .where(job_events.c.job_id.in_(chunk))
                    .group_by(job_events.c.job_id, job_events.c.seq)
                    .having(sa.func.count() > 1)
                ).all()
            )
    by_id = {row.id: row for row in rows}
    per_url = Counter(str((row.input or {}).get("url")) for row in rows)
    problems: list[str] = []
    missing = [i for i in ids if i not in by_id]
    unended = [i for i in ids if i in by_id and by_id[i].status not in ENDED]
    failed = [i for i in ids if i in by_id and by_id[i].status in ("failed", "cancelled")]
    wrong = [
        i
        for i in ids
        if i in by_id
        and by_id[i].status == "succeeded"
        and (
            not isinstance(by_id[i].output, dict)
            or by_id[i].output.get("status") != 200
            or by_id[i].output.get("url") != wanted[i]
        )
    ]
    counts = {
        "items": len(ids),
        "jobs_of_tenant": len(rows),
        "succeeded": sum(1 for i in ids if i in by_id and by_id[i].status == "succeeded"),
        "missing": len(missing),
        "not_ended": len(unended),
        "failed_or_cancelled": len(failed),
        "wrong_result": len(wrong),
        "urls_with_other_than_one_job": sum(1 for u in urls if per_url[u] != 1),
        "terminal_events_not_one": sum(1 for i in ids if terminal[i] != 1),
        "events_recorded_twice": twice,
        "usage_records_not_one": sum(1 for i in ids if usage[i] != 1),
    }
    for name, value in counts.items():
        if name not in ("items", "jobs_of_tenant", "succeeded") and value:
            problems.append(f"{name}: {value}")
    if counts["jobs_of_tenant"] != len(ids):
        problems.append(f"the tenant has {len(rows)} jobs for {len(ids)} items")
    return {"counts": counts, "problems": problems, "examples": (missing + unended + wrong)[:5]}


def kill_run(args: argparse.Namespace, database: str) -> dict[str, Any]:
    from portwright.cli._stack import _free_port
    from portwright.sandbox import SandboxWorld
    from portwright.store import Store

    counter = RequestCounter()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="batch-kill-")))
        world = stack.enter_context(SandboxWorld(static_site(counter), seed=14))
        if database == "postgres":
            db_url = stack.enter_context(fresh_pg_database(args.postgres, "pwbench_kill"))
        else:
            db_url = f"sqlite:///{tmp / 'app.sqlite'}"
        site = world.url("scrape-static")
        urls = static_urls(site, args.items)
        env = _process_env(db_url, tmp, site.removeprefix("http://"), args.concurrency)
        key = _bench_key(env)
        port = _free_port("127.0.0.1")
        log = tmp / "processes.log"
        with log.open("ab") as out:
            gateway = subprocess.Popen(
                [str(Path(sys.executable).parent / "portwright"), "api", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        stack.callback(lambda: (gateway.terminate(), gateway.wait(timeout=20)))
        store = Store.open(db_url, run_migrations=False)
        stack.callback(store.close)
        workers = Workers(args.workers, "kill", env, log)
        workers.start()
        stack.callback(workers.stop)
        workers.wait_ready(store, 120)
        tenant = store.tenants.ensure("bench").id
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=3600) as probe:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if probe.get("/healthz").status_code == 200:
                        break
                time.sleep(0.2)
        headers = {"authorization": f"Bearer {key}"}
        samples: list[dict[str, Any]] = []
        events: list[str] = []
        killed_at = restarted_at = None
        restarted_ended: int | None = None
        with httpx.Client(base_url=base, headers=headers, timeout=3600) as api:
            t0 = time.monotonic()
            ids = _post_batches(api, urls)
            accepted = time.monotonic() - t0
        deadline = t0 + args.timeout
        ended = 0
        analyzed = time.monotonic()
        while time.monotonic() < deadline:
            ended, _last = _ended(store.engine, tenant)
            if args.analyze_every and time.monotonic() - analyzed >= args.analyze_every:
                _analyze(store.engine)
                analyzed = time.monotonic()
            now = time.monotonic() - t0
            samples.append({"t": now, "ended": ended, "rss": workers.rss()})
            if len(samples) % 20 == 0:  # every ~10 s
                print(f"… {now:.0f}s {ended}/{len(ids)} ended", file=sys.stderr, flush=True)
            if killed_at is None and ended >= args.kill_at * len(ids):
                workers.kill(0)
                killed_at = now
                running = store.jobs.counts_by_status(tenant_id=tenant).get("running", 0)
                events.append(
                    f"{now:.1f}s: SIGKILL {workers.ids[0]} at {ended} ended, {running} running"
                    " (on both workers)"
                )
            elif (
                killed_at is not None
                and restarted_at is None
                and now >= killed_at + args.restart_after
            ):
                workers.restart(0)
                restarted_at, restarted_ended = now, ended
                events.append(f"{now:.1f}s: restarted {workers.ids[0]} at {ended} ended")
            if ended >= len(ids) and restarted_at is not None:
                break
            time.sleep(0.5)
        done = time.monotonic() - t0
        checked = verify(store.engine, tenant, ids, urls)
        if ended < len(ids):
            checked["problems"].append(f"timed out: {ended} of {len(ids)} ended")
        return {
            "database": database,
            "items": len(ids),
            "workers": args.workers,
            "accepted_s": accepted,
            "done_s": done,
            "events": events,
            "requests": counter.count,
            "samples": samples,
            "restarted_ended": restarted_ended,
            "worker_ids": workers.ids,
            **checked,
        }


def _memory(result: dict[str, Any]) -> list[str]:
    """The workers' RSS at each tenth of the items ended, and each one's growth from its
    first sample past a quarter of the run (the restarted worker: a quarter of the way from
    its restart) to the end."""
    samples, items = result["samples"], result["items"]
    ids = result["worker_ids"]
    lines = ["ended  " + "".join(f"{w:>14}" for w in ids) + "   (RSS, MB)"]
    shown = -1
    for sample in samples:
        tenth = int(10 * sample["ended"] / max(1, items))
        if tenth > shown:
            shown = tenth
            cells = "".join(f"{r / MB:14.0f}" for r in sample["rss"])
            lines.append(f"{sample['ended']:5}  {cells}")
    restarted = result.get("restarted_ended")
    for index, worker in enumerate(ids):
        first = items / 4  # past the start-up and the first quarter of the run
        if index == 0 and restarted is not None:  # its second life, once warmed up
            first = restarted + (items - restarted) / 4
        late = [s["rss"][index] for s in samples if s["ended"] >= first and s["rss"][index]]
        if len(late) >= 2:
            growth = late[-1] - late[0]
            lines.append(
                f"{worker}: {late[0] / MB:.0f} → {late[-1] / MB:.0f} MB from {first:.0f} ended "
                f"to the end ({growth / MB:+.0f} MB, peak {max(late) / MB:.0f} MB)"
            )
    return lines


def render_kill(result: dict[str, Any]) -> str:
    c = result["counts"]
    lines = [
        f"kill mode · {result['database']} · {result['items']} URLs · {result['workers']} "
        f"`portwright worker` processes · accepted {result['accepted_s']:.1f} s · all ended "
        f"{result['done_s']:.1f} s ({result['items'] / result['done_s']:.1f} pages/s)",
        *result["events"],
        f"sandbox requests served: {result['requests']} for {result['items']} items "
        "(re-fetches of idempotent GETs and robots.txt included)",
        "every item exactly one recorded result: "
        + ("YES" if not result["problems"] else "NO — " + "; ".join(result["problems"])),
        "  " + ", ".join(f"{k} {v}" for k, v in c.items()),
        *_memory(result),
    ]
    if result.get("examples"):
        lines.append(f"examples: {result['examples']}")
    return "\n".join(lines)


# -- entry point -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", "-n", type=int, default=1000, help="URLs (1000)")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="at once (8)")
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (1)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL, no database")
    parser.add_argument("--kill", action="store_true", help="the crash mode (see above)")
    parser.add_argument("--workers", type=int, default=2, help="kill mode: worker processes")
    parser.add_argument("--kill-at", type=float, default=0.3, help="kill mode: share ended")
    parser.add_argument("--restart-after", type=float, default=2.0, help="kill mode: seconds")
    parser.add_argument("--timeout", type=float, default=3600.0, help="kill mode: seconds")
    parser.add_argument(
        "--analyze-every",
        type=float,
        default=0.0,
        metavar="S",
        help="PostgreSQL: ANALYZE dbos.workflow_status every S seconds during a run (what "
        "autovacuum would do; it is off on some servers); 0, the default: never",
    )
    parser.add_argument(
        "--before-src",
        metavar="DIR",
        default="",
        help="also run Portwright from this `src` directory (another checkout, e.g. "
        "`git archive <commit> src | tar -x -C /tmp/before`) on the same databases, in "
        "the same rounds: before and after a change on the same machine load (with "
        "--split, the deployed shape too: every process from that directory)",
    )
    parser.add_argument(
        "--split",
        type=int,
        default=0,
        metavar="N",
        help="also run the deployed shape on the same databases: a `portwright api` "
        "gateway, the relay and N `portwright worker` processes (each at --concurrency)",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also print where each Portwright run's time went: each chunk workflow's start "
        "and end, its steps' mean durations, the first and last item's end (read from the "
        "databases after the batch)",
    )
    parser.add_argument(
        "--skip",
        default="",
        metavar="NAMES",
        help="leave out the systems whose name starts with one of these (comma-separated), "
        "e.g. `crawlee,portwright` to compare the deployed shape before and after faster",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        return child_main(args.child)
    if not 1 <= args.items <= 100_000:
        raise SystemExit("--items must be between 1 and 100000")
    if not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 20:
        raise SystemExit("--concurrency must be 1-256, --rounds 1-20")
    if not 0 <= args.split <= 8:
        raise SystemExit("--split must be 0-8")
    if not 1 <= args.workers <= 16 or not 0 < args.kill_at < 1:
        raise SystemExit("--workers must be 1-16, --kill-at between 0 and 1")
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    if args.phases:
        os.environ[PHASES_ENV] = "1"  # the children read it
    from portwright.observability import configure_logging
    from portwright.settings import Settings

    configure_logging(Settings(log_level="WARNING", log_json=False))
    started = time.monotonic()
    failed = False
    output: Any
    if args.kill:
        output = []
        for database in databases:
            result = kill_run(args, database)
            print(render_kill(result), flush=True)
            failed |= bool(result["problems"])
            output.append(result)
    else:
        output = compare(args, databases)
        print(render(args, output))
        failed = any("error" in r or r.get("ok") != r.get("pages") for r in output)
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=2))
    print(f"\n(total {time.monotonic() - started:.0f}s)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
