"""Portwright's orchestrator overhead: a no-op job against a bare DBOS workflow.

For each backend (SQLite, PostgreSQL) and each system, a fresh subprocess with a
fresh database enqueues J jobs of S no-op steps and waits for all of them:

* ``dbos``: an async ``@DBOS.workflow`` calling ``DBOS.run_step_async`` S times,
  enqueued on a DBOS queue configured exactly like Portwright's portal queue
  (same global/worker/partition concurrency, polling interval, partition key per
  job, and on SQLite the same WAL engine for the system database);
* ``portwright``: ``JobService.submit`` of a no-op adapter whose ``run`` makes
  two transitions and S ``job.step(...)`` calls, so every step goes through its
  transaction (pending transitions, the gate), the step function and its
  checkpoint, and the job ends with a transition.

It reports jobs/s (J over the wall time from the first submit to the last
completion), per-job latency (submit to completion), per-job run time (DBOS
dequeue to completion, at the same concurrency), where a job's time goes by DBOS
step name, SQL statements per job, and the added milliseconds per step::

    python benchmarks/orchestrator_bench.py            # 200 jobs x 5 steps, both backends
    python benchmarks/orchestrator_bench.py --quick    # a smoke run
    python benchmarks/orchestrator_bench.py --quick --rounds 3   # each pair 3 times
    python benchmarks/orchestrator_bench.py --json results.json
    python benchmarks/orchestrator_bench.py --settle   # 200 jobs x 3 steps, 5 rounds, ABBA
    python benchmarks/orchestrator_bench.py --settle --before /tmp/old  # + another tree

`--order abba` runs each round's systems in the opposite order of the round before (so
a machine's load drifting one way over a round does not favour whichever system runs
second), and beside jobs/s each round gives the ratio of CPU per job (this process's CPU
time), which a busy machine disturbs far less than wall time. `--before DIR` adds a
third system, `before`: Portwright run from the source tree `DIR` (`DIR/src` or `DIR`
put first on `PYTHONPATH`), in the same rounds, to compare two versions of the code.

PostgreSQL comes from ``--postgres`` (default ``postgresql://postgres@127.0.0.1:5432``);
each run creates and drops its own database there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib import pg_admin

SYSTEMS = ("dbos", "portwright")
BEFORE = "before"  # Portwright from another source tree (`--before`)
BACKENDS = ("sqlite", "postgres")
TERMINAL = ["SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"]
QUEUE = "bench-noop"
WAIT_POLL_S = 0.25


@dataclass(frozen=True)
class RunSpec:
    """One configuration, run in its own process (DBOS is a process singleton)."""

    system: str
    backend: str
    database_url: str
    data_dir: str
    jobs: int
    steps: int
    warmup: int
    concurrency: int
    poll_s: float
    timeout_s: float
    out: str


# -- the child: one system on one backend ----------------------------------------------


class SqlCounter:
    """Counts SQL statements and commits on every SQLAlchemy engine while `on`."""

    TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(?:\w+\"?\.\"?)?(\w+)", re.IGNORECASE)

    def __init__(self) -> None:
        self.on = False
        self.statements: dict[str, int] = {}
        self.commits = 0
        self._labels: dict[str, str] = {}

    def install(self) -> None:
        import sqlalchemy as sa
        from sqlalchemy import event

        event.listen(sa.engine.Engine, "before_cursor_execute", self._statement)
        event.listen(sa.engine.Engine, "commit", self._commit)

    def _label(self, sql: str) -> str:
        label = self._labels.get(sql)
        if label is None:
            verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
            match = self.TABLE.search(sql)
            label = f"{verb} {match.group(1)}" if match and verb != "PRAGMA" else verb
            self._labels[sql] = label
        return label

    def _statement(self, _conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        if self.on:
            label = self._label(sql)
            self.statements[label] = self.statements.get(label, 0) + 1

    def _commit(self, _conn: Any) -> None:
        if self.on:
            self.commits += 1


async def _noop_step(index: int) -> int:
    return index


async def _noop_adapter_step(_sc: Any, index: int) -> int:
    return index


def _dbos_system(spec: RunSpec) -> tuple[Any, Any]:
    """Launch bare DBOS with Portwright's engine settings; returns (workflow, queue)."""
    from dbos import DBOS, DBOSConfig

    from portwright.store import create_engine, is_sqlite

    config: DBOSConfig = {
        "name": "bench-dbos",
        "system_database_url": spec.database_url,
        "executor_id": f"bench-dbos-{os.getpid()}",
        "application_version": "bench-dbos",
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.1,
    }
    if is_sqlite(spec.database_url):
        config["system_database_engine"] = create_engine(spec.database_url)
    DBOS(config=config)

    @DBOS.workflow(name="bench.noop")
    async def noop_workflow(steps: int) -> int:
        total = 0
        for index in range(steps):
            total += await DBOS.run_step_async({"name": "noop"}, _noop_step, index)
        return total

    DBOS.launch()
    queue = DBOS.register_queue(
        QUEUE,
        global_concurrency=spec.concurrency,
        worker_concurrency=min(32, spec.concurrency),  # Settings.worker_concurrency default
        partition_concurrency=1,
        polling_interval_sec=spec.poll_s,
        on_conflict="always_update",
    )
    return noop_workflow, queue


def _portwright_system(spec: RunSpec) -> Any:
    """Start a Portwright Runtime with a no-op adapter; returns (runtime, service, tenant)."""
    from collections.abc import Mapping
    from typing import ClassVar

    from pydantic import BaseModel, Field

    from portwright.adapters import AdapterRegistry
    from portwright.orchestrator import JobService, Runtime
    from portwright.sdk import Adapter, Job, linear_machine
    from portwright.settings import Settings

    class NoopInput(BaseModel):
        steps: int = Field(ge=1, le=10_000)

    class NoopAdapter(Adapter[NoopInput]):
        name: ClassVar[str] = QUEUE
        input_model = NoopInput
        machine = linear_machine(QUEUE, ["WORKING"])
        max_concurrency = spec.concurrency

        async def run(self, job: Job[NoopInput]) -> Mapping[str, Any]:
            await job.transition("QUEUED")
            await job.transition("WORKING")
            total = 0
            for index in range(job.input.steps):
                total += await job.step("noop", _noop_adapter_step, index)
            return {"total": total}

    registry = AdapterRegistry()
    registry.register(NoopAdapter)
    settings = Settings(
        data_dir=Path(spec.data_dir),
        database_url=spec.database_url,
        worker_id=f"bench-pw-{os.getpid()}",
        queue_polling_interval_s=spec.poll_s,
        log_level="WARNING",
        log_json=False,
    )
    runtime = Runtime(settings, registry).start()
    service = JobService(runtime)
    tenant = runtime.store.tenants.ensure("bench").id
    return runtime, service, tenant


class Harness:
    """Submits jobs to one system and waits for them, the same way for both systems."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.runtime: Any = None
        self._service: Any = None
        self._tenant = ""
        self._workflow: Any = None
        self._queue: Any = None

    async def start(self) -> None:
        if self.spec.system == "dbos":  # "portwright" and "before" are both Portwright
            self._workflow, self._queue = await asyncio.to_thread(_dbos_system, self.spec)
        else:
            self.runtime, self._service, self._tenant = await asyncio.to_thread(
                _portwright_system, self.spec
            )

    async def stop(self) -> None:
        from dbos import DBOS

        if self.runtime is not None:
            await asyncio.to_thread(self.runtime.stop)
        else:
            await asyncio.to_thread(DBOS.destroy, destroy_registry=False)

    async def submit(self, job_id: str) -> None:
        from dbos import SetEnqueueOptions, SetWorkflowID

        if self._service is not None:
            await self._service.submit(
                tenant_id=self._tenant,
                adapter=QUEUE,
                input={"steps": self.spec.steps},
                job_id=job_id,
                actor="bench",
            )
            return
        with SetWorkflowID(job_id), SetEnqueueOptions(queue_partition_key=job_id):
            await self._queue.enqueue_async(self._workflow, self.spec.steps)

    async def wait(self, ids: list[str], deadline: float) -> None:
        from dbos import DBOS

        pending = set(ids)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(ids)} jobs still unfinished")
            done = await DBOS.list_workflows_async(
                workflow_ids=sorted(pending), status=TERMINAL, load_input=False, load_output=False
            )
            pending -= {status.workflow_id for status in done}
            if pending:
                await asyncio.sleep(WAIT_POLL_S)

    async def run_batch(self, prefix: str, count: int, deadline: float) -> tuple[list[str], dict]:
        ids = [f"{prefix}-{index:05d}" for index in range(count)]
        submitted: dict[str, float] = {}
        for job_id in ids:
            submitted[job_id] = time.time()
            await self.submit(job_id)
        await self.wait(ids, deadline)
        return ids, submitted

    async def verify(self, ids: list[str]) -> list[str]:
        """Problems with finished jobs (wrong status, output, or audit trail)."""
        from dbos import DBOS

        expected = sum(range(self.spec.steps))
        statuses = await DBOS.list_workflows_async(workflow_ids=ids, load_input=False)
        problems = [
            f"{s.workflow_id}: workflow {s.status} {s.error}"
            for s in statuses
            if s.status != "SUCCESS"
        ]
        if self._service is None:
            problems += [
                f"{s.workflow_id}: output {s.output}"
                for s in statuses
                if s.status == "SUCCESS" and s.output != expected
            ]
            return problems
        for job_id in ids:
            job = await self._service.get(job_id)
            total = (job.output or {}).get("total")
            if job.state != "SUCCEEDED" or total != expected:
                problems.append(f"{job_id}: {job.state} output {job.output} ({job.reason})")
            elif not (await asyncio.to_thread(self._service.replay, job_id)).matches:
                problems.append(f"{job_id}: events do not replay to the stored state")
        return problems


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Timeline:
    """From DBOS's step records (millisecond timestamps on both backends, unlike the
    workflow rows, which SQLite stores to the second)."""

    first_start_ms: dict[str, float]
    last_end_ms: dict[str, float]
    by_name: dict[str, dict[str, float]]
    in_steps_ms: float


async def _timeline(ids: list[str]) -> Timeline:
    from dbos import DBOS

    first: dict[str, float] = {}
    last: dict[str, float] = {}
    calls: dict[str, int] = {}
    millis: dict[str, float] = {}
    for job_id in ids:
        for step in await DBOS.list_workflow_steps_async(job_id, load_output=False):
            started, completed = step["started_at_epoch_ms"], step["completed_at_epoch_ms"]
            if started is None or completed is None:
                continue
            name = step["function_name"]
            calls[name] = calls.get(name, 0) + 1
            millis[name] = millis.get(name, 0.0) + (completed - started)
            first[job_id] = min(first.get(job_id, started), started)
            last[job_id] = max(last.get(job_id, completed), completed)
    count = len(ids)
    by_name = {
        name: {"calls": calls[name] / count, "ms": millis[name] / count} for name in sorted(calls)
    }
    return Timeline(first, last, by_name, sum(millis.values()) / count)


def _dist(values: list[float]) -> dict[str, float]:
    return {"p50": _pct(values, 0.5), "p95": _pct(values, 0.95), "mean": statistics.mean(values)}


async def child(spec: RunSpec) -> dict[str, Any]:
    from portwright.observability import configure_logging
    from portwright.settings import Settings

    configure_logging(Settings(log_level="WARNING", log_json=False))
    counter = SqlCounter()
    counter.install()
    harness = Harness(spec)
    started = time.monotonic()
    await harness.start()
    try:
        deadline = time.monotonic() + spec.timeout_s
        if spec.warmup:
            await harness.run_batch("warm", spec.warmup, deadline)
        counter.on = True
        cpu0, t0 = time.process_time(), time.time()
        ids, submitted = await harness.run_batch("job", spec.jobs, deadline)
        cpu = time.process_time() - cpu0
        counter.on = False
        problems = await harness.verify(ids)
        timeline = await _timeline(ids)
    finally:
        await harness.stop()
    missing = [i for i in ids if i not in timeline.last_end_ms]
    if missing:
        raise RuntimeError(f"{len(missing)} jobs have no step records, e.g. {missing[0]}")
    end, begin = timeline.last_end_ms, timeline.first_start_ms
    wall = max(end.values()) / 1000 - t0
    run = [end[i] - begin[i] for i in ids]
    sql_total = sum(counter.statements.values())
    return {
        "system": spec.system,
        "backend": spec.backend,
        "jobs": spec.jobs,
        "steps": spec.steps,
        "concurrency": spec.concurrency,
        "poll_s": spec.poll_s,
        "wall_s": wall,
        "jobs_per_s": spec.jobs / wall,
        "cpu_ms_per_job": cpu * 1000 / spec.jobs,
        "e2e_ms": _dist([end[i] - submitted[i] * 1000 for i in ids]),
        "run_ms": _dist(run),
        "start_wait_ms": _dist([begin[i] - submitted[i] * 1000 for i in ids]),
        "steps_per_job": timeline.by_name,
        "between_steps_ms": statistics.mean(run) - timeline.in_steps_ms,
        "sql_per_job": sql_total / spec.jobs,
        "commits_per_job": counter.commits / spec.jobs,
        "sql_by_kind_per_job": {
            k: v / spec.jobs for k, v in sorted(counter.statements.items(), key=lambda kv: -kv[1])
        },
        "problems": problems[:20],
        "process_s": time.monotonic() - started,
    }


def child_main(spec_json: str) -> int:
    spec = RunSpec(**json.loads(spec_json))
    try:
        result = asyncio.run(child(spec))
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    Path(spec.out).write_text(json.dumps(result))
    return 0 if "error" not in result and not result.get("problems") else 1


# -- the parent: fresh databases, one subprocess per configuration ---------------------


@contextlib.contextmanager
def _fresh_database(backend: str, system: str, data_dir: Path, args: Any, admin: Any) -> Any:
    """A database URL nobody has used yet; a Postgres database is dropped afterwards."""
    import sqlalchemy as sa

    if backend == "sqlite":
        yield f"sqlite:///{data_dir / ('dbos' if system == 'dbos' else 'portwright')}.sqlite"
        return
    name = f"pwbench_{system}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = f"{args.postgres.rstrip('/')}/{name}"
        # Portwright's Settings pick the psycopg 3 driver themselves; bare DBOS gets it here.
        yield url.replace("postgresql://", "postgresql+psycopg://", 1) if system == "dbos" else url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _source_path(tree: str) -> str:
    """The directory to put first on PYTHONPATH to import `portwright` from `tree`."""
    root = Path(tree).resolve()
    return str(root / "src") if (root / "src" / "portwright").is_dir() else str(root)


def _run_one(spec: RunSpec, before: str | None = None) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(asdict(spec))]
    limit = spec.timeout_s + 90  # start-up, verification and shutdown on top of the jobs
    env = None
    if spec.system == BEFORE and before:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [_source_path(before), *filter(None, [env.get("PYTHONPATH", "")])]
        )
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=limit, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {limit:g}s"}
    out = Path(spec.out)
    result: dict[str, Any] = (
        json.loads(out.read_text()) if out.exists() else {"error": f"exit {proc.returncode}"}
    )
    if "error" in result or result.get("problems"):
        result["stderr_tail"] = (proc.stderr or proc.stdout)[-2000:]
    return result


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    admin = pg_admin(args.postgres) if "postgres" in args.backends else None
    systems = _systems(args)
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        for round_no, backend, system in (
            (r, b, s)
            for r in range(args.rounds)
            for b in args.backends
            for s in (systems[::-1] if args.order == "abba" and r % 2 else systems)
        ):
            data_dir = Path(tmp) / f"{backend}-{system}-{round_no}"
            data_dir.mkdir()
            print(f"… {backend:8} {system:10}", end="", file=sys.stderr, flush=True)
            with _fresh_database(backend, system, data_dir, args, admin) as url:
                spec = RunSpec(
                    system=system,
                    backend=backend,
                    database_url=url,
                    data_dir=str(data_dir),
                    jobs=args.jobs,
                    steps=args.steps,
                    warmup=args.warmup,
                    concurrency=args.concurrency,
                    poll_s=args.poll,
                    timeout_s=args.timeout,
                    out=str(data_dir / "result.json"),
                )
                result = {
                    "system": system,
                    "backend": backend,
                    "round": round_no,
                    **_run_one(spec, args.before),
                }
            note = result.get("error") or (
                f"{result.get('jobs_per_s', 0):.1f} jobs/s, "
                f"{result.get('cpu_ms_per_job', 0):.1f} ms CPU/job, "
                f"{result.get('sql_per_job', 0):.1f} SQL/job"
            )
            print(f" {note}", file=sys.stderr, flush=True)
            results.append(result)
    if admin is not None:
        admin.dispose()
    return results


def _systems(args: argparse.Namespace) -> tuple[str, ...]:
    return (*SYSTEMS, BEFORE) if getattr(args, "before", None) else SYSTEMS


def round_ratios(
    results: list[dict[str, Any]],
    key: str = "jobs_per_s",
    system: str = "portwright",
    base_system: str = "dbos",
) -> dict[str, list[float]]:
    """Per backend: `system`'s `key` (jobs/s, or CPU ms per job) over `base_system`'s, one
    ratio per round (each pair measured in the same round, so a change in the machine's
    load hits both alike)."""
    by = {(r["backend"], r["system"], r.get("round", 0)): r for r in results if "error" not in r}
    out: dict[str, list[float]] = {}
    for backend, name, round_no in sorted(by):
        base = by.get((backend, base_system, round_no))
        if name == system and base is not None and base[key]:
            ratio = by[(backend, name, round_no)][key] / base[key]
            out.setdefault(backend, []).append(ratio)
    return out


def _spread(ratios: list[float]) -> str:
    """The ratios of each round, their median and their range."""
    listed = " ".join(f"{r:.2f}" for r in ratios)
    return (
        f"{listed}  median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.2f}-{max(ratios):.2f})"
    )


def all_ratios(results: list[dict[str, Any]], systems: tuple[str, ...]) -> dict[str, Any]:
    """Every per-round ratio the report shows, by name and backend (for `--json`)."""
    out: dict[str, Any] = {
        "jobs_per_s": round_ratios(results),
        "cpu_per_job": round_ratios(results, "cpu_ms_per_job"),
        "sql_per_job": round_ratios(results, "sql_per_job"),
    }
    if BEFORE in systems:
        out["cpu_per_job_vs_before"] = round_ratios(results, "cpu_ms_per_job", base_system=BEFORE)
        out["jobs_per_s_vs_before"] = round_ratios(results, base_system=BEFORE)
        out["before_jobs_per_s"] = round_ratios(results, system=BEFORE)
        out["before_cpu_per_job"] = round_ratios(results, "cpu_ms_per_job", system=BEFORE)
    return out


def summarise(results: list[dict[str, Any]], steps: int) -> dict[str, dict[str, float]]:
    """Per backend: the ratios against bare DBOS and the added milliseconds per step
    (of the last round; `round_ratios` has every round's throughput ratio)."""
    last = max((r.get("round", 0) for r in results), default=0)
    by = {
        (r["backend"], r["system"]): r
        for r in results
        if "error" not in r and r.get("round", 0) == last
    }
    out = {}
    for backend in BACKENDS:
        base, pw = by.get((backend, "dbos")), by.get((backend, "portwright"))
        if base is None or pw is None:
            continue
        out[backend] = {
            "throughput_ratio": pw["jobs_per_s"] / base["jobs_per_s"],
            "run_p50_ratio": pw["run_ms"]["p50"] / base["run_ms"]["p50"],
            "e2e_p50_ratio": pw["e2e_ms"]["p50"] / base["e2e_ms"]["p50"],
            "added_ms_per_step_p50": (pw["run_ms"]["p50"] - base["run_ms"]["p50"]) / steps,
            "added_ms_per_step_mean": (pw["run_ms"]["mean"] - base["run_ms"]["mean"]) / steps,
            # a saturated worker's time per job, 1/(jobs/s), split over the steps
            "added_ms_per_step_saturated": 1000
            * (1 / pw["jobs_per_s"] - 1 / base["jobs_per_s"])
            / steps,
            "added_cpu_ms_per_step": (pw["cpu_ms_per_job"] - base["cpu_ms_per_job"]) / steps,
            "added_sql_per_step": (pw["sql_per_job"] - base["sql_per_job"]) / steps,
        }
    return out


def render(args: argparse.Namespace, results: list[dict[str, Any]], summary: dict) -> str:
    lines = [
        f"{args.jobs} jobs x {args.steps} no-op steps · concurrency {args.concurrency} · "
        f"queue poll {args.poll:g}s · {os.cpu_count()} cores",
        "",
        f"{'backend':9}{'system':12}{'jobs/s':>8}{'x dbos':>8}{'run p50':>9}{'run p95':>9}"
        f"{'x dbos':>8}{'e2e p50':>9}{'e2e p95':>9}{'cpu/job':>9}{'sql/job':>9}{'tx/job':>8}",
    ]
    last = max((r.get("round", 0) for r in results), default=0)
    by = {(r["backend"], r["system"]): r for r in results if r.get("round", 0) == last}
    for backend in args.backends:
        base = by.get((backend, "dbos"), {})
        for system in _systems(args):
            r = by.get((backend, system), {})
            if "error" in r or not r:
                lines.append(f"{backend:9}{system:12}  failed: {r.get('error', 'no result')}")
                continue
            ok = "error" not in base and base
            tput = f"{r['jobs_per_s'] / base['jobs_per_s']:.2f}" if ok else "-"
            run = f"{r['run_ms']['p50'] / base['run_ms']['p50']:.2f}" if ok else "-"
            lines.append(
                f"{backend:9}{system:12}{r['jobs_per_s']:8.1f}{tput:>8}"
                f"{r['run_ms']['p50']:9.1f}{r['run_ms']['p95']:9.1f}{run:>8}"
                f"{r['e2e_ms']['p50']:9.1f}{r['e2e_ms']['p95']:9.1f}"
                f"{r['cpu_ms_per_job']:9.1f}{r['sql_per_job']:9.1f}{r['commits_per_job']:8.1f}"
            )
    lines += [
        "",
        "run = first step start → last step end; e2e = submit → last step end;",
        "cpu = this process's CPU time (ms per job); x dbos = ratio to bare DBOS, same run",
        "",
    ]
    if summary:
        lines += [
            f"added per step by Portwright (Portwright minus bare DBOS, / {args.steps} steps):",
            f"{'backend':9}{'latency p50':>12}{'mean':>8}{'worker':>9}{'cpu':>8}{'sql':>7}"
            f"{'jobs/s x':>10}",
        ]
        for backend, s in summary.items():
            lines.append(
                f"{backend:9}{s['added_ms_per_step_p50']:9.1f} ms{s['added_ms_per_step_mean']:8.1f}"
                f"{s['added_ms_per_step_saturated']:9.1f}{s['added_cpu_ms_per_step']:8.1f}"
                f"{s['added_sql_per_step']:7.1f}{s['throughput_ratio']:10.2f}"
            )
        lines += [
            f"latency = run time at concurrency {args.concurrency}; worker = a saturated worker's"
            " time per job, 1/(jobs/s); cpu = process CPU; sql = statements",
        ]
    if args.rounds > 1:
        order = "ABBA: every other round in reverse order" if args.order == "abba" else "AB"
        lines += ["", f"each of {args.rounds} rounds ({order}; the table shows the last round):"]
        labels = {
            "jobs_per_s": "jobs/s x dbos",
            "cpu_per_job": "CPU/job x dbos",
            "sql_per_job": "SQL/job x dbos",
            "jobs_per_s_vs_before": "jobs/s x before",
            "cpu_per_job_vs_before": "CPU/job x before",
            "before_jobs_per_s": "before: jobs/s x dbos",
            "before_cpu_per_job": "before: CPU/job x dbos",
        }
        for name, by_backend in all_ratios(results, _systems(args)).items():
            for backend, ratios in by_backend.items():
                lines.append(f"  {labels[name]:23}{backend:9}{_spread(ratios)}")
    lines += ["", "where a job's run time goes (ms per job, by DBOS step name; calls in brackets):"]
    for r in results:
        if "error" in r or r.get("round", 0) != last:
            continue
        parts = [f"{name} {v['ms']:.1f} [{v['calls']:g}]" for name, v in r["steps_per_job"].items()]
        parts.append(f"between steps {r['between_steps_ms']:.1f}")
        lines.append(f"  {r['backend']:9}{r['system']:11} " + " · ".join(parts))
    lines += ["", "SQL statements per Portwright job, top kinds (bare DBOS in brackets):"]
    for backend in args.backends:
        pw, base = by.get((backend, "portwright"), {}), by.get((backend, "dbos"), {})
        if "sql_by_kind_per_job" not in pw:
            continue
        base_kinds = base.get("sql_by_kind_per_job", {})
        top = [
            f"{k} {v:.1f} [{base_kinds.get(k, 0):.1f}]"
            for k, v in pw["sql_by_kind_per_job"].items()
        ]
        for first in range(0, min(len(top), 12), 4):
            label = backend if first == 0 else ""
            lines.append(f"  {label:9}" + " · ".join(top[first : first + 4]))
    for r in results:
        for problem in r.get("problems", []):
            lines.append(f"PROBLEM {r['backend']} {r['system']}: {problem}")
        if "stderr_tail" in r:
            lines.append(f"--- {r['backend']} {r['system']} output ---\n{r['stderr_tail']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", "-j", type=int, default=200, help="jobs per run (200)")
    parser.add_argument("--steps", "-s", type=int, default=5, help="no-op steps per job (5)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed jobs first (10)")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="queue concurrency (8)")
    parser.add_argument("--poll", type=float, default=0.05, help="queue polling interval, s")
    parser.add_argument("--timeout", type=float, default=150.0, help="per run, seconds")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PORTWRIGHT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
        help="server URL without a database; each run creates and drops its own",
    )
    parser.add_argument("--quick", action="store_true", help="40 jobs x 3 steps, 5 warm-up")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every configuration this many times, alternating (ratios per round)",
    )
    parser.add_argument(
        "--order",
        choices=("ab", "abba"),
        default="ab",
        help="each round in the same order (ab), or every other round reversed (abba)",
    )
    parser.add_argument(
        "--settle",
        action="store_true",
        help="the long-job target's run: 200 jobs x 3 steps, 20 warm-up, 5 rounds, abba",
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also run Portwright from the source tree DIR (system 'before') in every round",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write all results as JSON ('-': stdout)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        return child_main(args.child)
    if args.quick:
        args.jobs, args.steps, args.warmup = 40, 3, 5
    if args.settle:
        args.jobs, args.steps, args.warmup = 200, 3, 20
        args.rounds = max(args.rounds, 5)
        args.order = "abba"
    if min(args.jobs, args.steps, args.concurrency, args.rounds) < 1 or args.poll <= 0:
        raise SystemExit("--jobs, --steps, --concurrency and --rounds must be >= 1 and --poll > 0")
    started = time.monotonic()
    results = run_all(args)
    summary = summarise(results, args.steps)
    ratios = all_ratios(results, _systems(args))
    report = render(args, results, summary)
    if args.json == "-":
        print(json.dumps({"results": results, "summary": summary, "rounds": ratios}, indent=2))
    else:
        print(report)
        if args.json:
            Path(args.json).write_text(
                json.dumps({"results": results, "summary": summary, "rounds": ratios}, indent=2)
            )
    print(f"\n(total {time.monotonic() - started:.0f}s)", file=sys.stderr)
    failed = any("error" in r or r.get("problems") for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
