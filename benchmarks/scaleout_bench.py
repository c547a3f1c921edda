"""Scale-out: one `portwright worker` process against four, on PostgreSQL, I/O-bound jobs.

One fresh PostgreSQL database, one sandbox echo service on 127.0.0.1 whose every
answer waits ``--latency-ms`` (the sandbox's chaos knob ``latency_ms``), and a
benchmark adapter, ``bench-io``, whose job makes ``--steps`` checkpointed steps,
each one ``sc.http.get`` of that service. For each worker count in ``--workers``
(default ``1,4``), in alternating rounds on the same database:

* start that many real ``portwright worker`` processes (the CLI, with its whole
  stack: every installed adapter, the fleet, the vault) and wait until each has
  heartbeated;
* submit ``--jobs`` jobs in one ``JobService.submit_many`` from this process (a
  runtime that runs no workers, as the gateway does);
* wait until every job has ended; jobs/s = jobs over the time from the submit to
  the last workflow's end (DBOS's millisecond timestamps on PostgreSQL);
* check every job SUCCEEDED, count which worker ran it, stop the workers.

The workers load ``bench-io`` the way they load any third-party adapter: through
the ``portwright.adapters`` entry point, from a ``.dist-info`` directory written to
a temporary directory on their ``PYTHONPATH`` (beside this file's directory). The
sandbox's port is on the SSRF allowlist (``PORTWRIGHT_URL_ALLOWLIST``).

Concurrency: a portal's DBOS queue admits ``max_concurrency`` jobs at once across
every worker (the adapter's class attribute, stored in ``portals``; ``bench-io`` gets
``--portal-cap``, 64) and ``min(worker_concurrency, max_concurrency)`` per worker
process (``PORTWRIGHT_WORKER_CONCURRENCY``; here ``--worker-concurrency``, 4). With
the shipped adapters' caps (4-16), a portal's global cap, not the worker count,
would bound the four workers; the cap here is above 4 x the per-worker limit, so
it does not.

    python benchmarks/scaleout_bench.py --jobs 40 --rounds 1   # a smoke run
    python benchmarks/scaleout_bench.py --jobs 200 --rounds 2
    python benchmarks/scaleout_bench.py --workers 1,2,4 --worker-concurrency 8

PostgreSQL comes from ``--postgres`` (default ``postgresql://postgres@127.0.0.1:5432``);
the run creates its database there and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from benchlib import Workers, machine_cpu, pg_admin
from orchestrator_bench import TERMINAL, WAIT_POLL_S
from pydantic import BaseModel, Field

from portwright.sdk import Adapter, Job, StepContext, linear_machine

ADAPTER = "bench-io"
PORTAL_CAP_ENV = "PWBENCH_PORTAL_CAP"
HERE = Path(__file__).resolve().parent


# -- the adapter the workers run ---------------------------------------------------------


class IoInput(BaseModel):
    url: str = Field(description="the sandbox echo service's base URL")
    steps: int = Field(3, ge=1, le=100)


async def _get(sc: StepContext, url: str, index: int) -> int:
    response = await sc.http.get(url, params={"k": "bench", "s": str(index)})
    return int(sc.check(response).status_code)


class IoAdapter(Adapter[IoInput]):
    """`steps` checkpointed steps, each one GET of a slow loopback endpoint."""

    name: ClassVar[str] = ADAPTER
    input_model = IoInput
    machine = linear_machine(ADAPTER, ["FETCHING"])
    max_concurrency: ClassVar[int] = int(os.environ.get(PORTAL_CAP_ENV, "64"))

    async def run(self, job: Job[IoInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("FETCHING")
        codes = [
            await job.step("get", _get, job.input.url, index) for index in range(job.input.steps)
        ]
        return {"codes": codes}


# -- the parent ----------------------------------------------------------------------------


def _entry_point_dir(root: Path) -> Path:
    """A directory that, on PYTHONPATH, advertises `bench-io` as an installed adapter."""
    info = root / "pwbench_scaleout-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pwbench-scaleout\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[portwright.adapters]\n{ADAPTER} = scaleout_bench:IoAdapter\n"
    )
    return root


async def _wait_ended(ids: list[str], deadline: float) -> list[Any]:
    from dbos import DBOS

    pending, ended = set(ids), []
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(ids)} jobs still unfinished")
        done = await DBOS.list_workflows_async(
            workflow_ids=sorted(pending), status=TERMINAL, load_input=False, load_output=False
        )
        ended += done
        pending -= {status.workflow_id for status in done}
        if pending:
            await asyncio.sleep(WAIT_POLL_S)
    return ended


async def _measure(
    service: Any, tenant: str, url: str, args: argparse.Namespace, workers: Workers
) -> dict[str, Any]:
    inputs = [{"url": url, "steps": args.steps}] * args.jobs
    load_before = os.getloadavg()
    cpu0, machine0 = workers.cpu_s(), machine_cpu()
    t0 = time.time()
    records = await service.submit_many(
        tenant_id=tenant, adapter=ADAPTER, inputs=inputs, actor="bench"
    )
    ids = [record.id for record in records]
    ended = await _wait_ended(ids, time.monotonic() + args.timeout)
    cpu, machine = workers.cpu_s() - cpu0, machine_cpu()
    busy = (machine[0] - machine0[0]) / max(1.0, machine[1] - machine0[1])
    wall = max(status.updated_at for status in ended) / 1000 - t0
    jobs = [await service.get(job_id) for job_id in ids]
    problems = [
        f"{job.id}: {job.state} {job.reason}"
        for job in jobs
        if job.state != "SUCCEEDED" or (job.output or {}).get("codes") != [200] * args.steps
    ]
    by_worker = Counter(status.executor_id for status in ended)
    return {
        "workers": len(workers.ids),
        "jobs": args.jobs,
        "wall_s": wall,
        "jobs_per_s": args.jobs / wall,
        "by_worker": {w: by_worker.get(w, 0) for w in workers.ids},
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "worker_cpu_ms_per_job": cpu * 1000 / args.jobs,
        "machine_busy": busy,
        "problems": problems[:10],
    }


async def run_all(args: argparse.Namespace, counts: list[int]) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from portwright.adapters import AdapterRegistry
    from portwright.orchestrator import JobService, Runtime
    from portwright.sandbox import SandboxWorld
    from portwright.sandbox.echo import echo_service
    from portwright.settings import Settings

    IoAdapter.max_concurrency = args.portal_cap  # the portal row takes it on first start
    admin = pg_admin(args.postgres)
    name = f"pwbench_scale_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    results: list[dict[str, Any]] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pw-scale-") as tmp,
            SandboxWorld([echo_service("slow-echo")], seed=7) as world,
        ):
            world.chaos("slow-echo").update({"latency_ms": (args.latency_ms, args.latency_ms)})
            url = world.url("slow-echo")
            allow = [url.removeprefix("http://")]
            db_url = f"{args.postgres.rstrip('/')}/{name}"
            data_dir = Path(tmp) / "data"
            site = _entry_point_dir(Path(tmp) / "site")
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    [str(site), str(HERE), os.environ.get("PYTHONPATH", "")]
                ).rstrip(os.pathsep),
                "PORTWRIGHT_DATABASE_URL": db_url,
                "PORTWRIGHT_DATA_DIR": str(data_dir),
                "PORTWRIGHT_WORKER_CONCURRENCY": str(args.worker_concurrency),
                "PORTWRIGHT_URL_ALLOWLIST": json.dumps(allow),
                "PORTWRIGHT_LOG_LEVEL": "WARNING",
                PORTAL_CAP_ENV: str(args.portal_cap),
            }
            registry = AdapterRegistry()
            registry.register(IoAdapter)
            settings = Settings(
                data_dir=data_dir,
                database_url=db_url,
                worker_id="scale-submitter",
                worker_concurrency=args.worker_concurrency,
                url_allowlist=allow,
                log_level="WARNING",
                log_json=False,
            )
            runtime = await asyncio.to_thread(Runtime(settings, registry, run_workers=False).start)
            try:
                service = JobService(runtime)
                tenant = runtime.store.tenants.ensure("bench").id
                for round_no in range(args.rounds):
                    order = counts if round_no % 2 == 0 else counts[::-1]
                    for count in order:
                        tag = f"r{round_no}-w{count}"
                        print(f"… round {round_no} {count} worker(s)", end="", file=sys.stderr)
                        workers = Workers(count, f"scale-{tag}", env, Path(tmp) / f"{tag}.log")
                        try:
                            workers.start()
                            await asyncio.to_thread(workers.wait_ready, runtime.store, 90)
                            result = await _measure(service, tenant, url, args, workers)
                        except Exception as exc:
                            log = workers.log.read_text(errors="replace")[-2000:]
                            result = {"workers": count, "error": f"{exc}", "log_tail": log}
                        finally:
                            await asyncio.to_thread(workers.stop)
                        result["round"] = round_no
                        note = result.get("error") or f"{result['jobs_per_s']:.1f} jobs/s"
                        print(f" {note}", file=sys.stderr, flush=True)
                        results.append(result)
            finally:
                await asyncio.to_thread(runtime.stop)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return results


def render(args: argparse.Namespace, counts: list[int], results: list[dict[str, Any]]) -> str:
    lines = [
        f"{args.jobs} jobs x {args.steps} steps, each a GET answered after {args.latency_ms:g} ms"
        f" · PostgreSQL · worker concurrency {args.worker_concurrency} · portal cap "
        f"{args.portal_cap} · {os.cpu_count()} cores",
        "",
        f"{'round':>5}{'workers':>8}{'jobs/s':>8}{'wall s':>8}{'cpu/job':>9}{'busy':>6}  "
        f"{'load before → after':22}jobs per worker",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"{r['round']:5}{r['workers']:8}  failed: {r['error']}")
            continue
        load = f"{r['load_before'][0]:.1f} → {r['load_after'][0]:.1f}"
        spread = " ".join(str(n) for n in r["by_worker"].values())
        lines.append(
            f"{r['round']:5}{r['workers']:8}{r['jobs_per_s']:8.1f}{r['wall_s']:8.1f}"
            f"{r['worker_cpu_ms_per_job']:9.1f}{r['machine_busy']:6.0%}  {load:22}{spread}"
        )
    lines += [
        "cpu/job = the worker processes' CPU ms per job; busy = the whole machine's CPU"
        " (every process, PostgreSQL and other users included) during the run"
    ]
    ideal = args.worker_concurrency / (args.steps * args.latency_ms / 1000)
    lines += [
        "",
        f"a worker's I/O-bound ceiling: {args.worker_concurrency} jobs in flight / "
        f"{args.steps} x {args.latency_ms:g} ms = {ideal:.1f} jobs/s (waiting alone)",
    ]
    base = counts[0]
    ok = [r for r in results if "error" not in r and not r["problems"]]
    for count in counts[1:]:
        ratios = [
            mine["jobs_per_s"] / theirs["jobs_per_s"]
            for mine in ok
            if mine["workers"] == count
            for theirs in ok
            if theirs["workers"] == base and theirs["round"] == mine["round"]
        ]
        if ratios:
            listed = " ".join(f"{x:.2f}" for x in ratios)
            lines.append(
                f"{count} workers / {base}: {listed} (median {statistics.median(ratios):.2f})"
            )
    for r in results:
        for problem in r.get("problems", []):
            lines.append(f"PROBLEM round {r['round']} {r['workers']} workers: {problem}")
        if "log_tail" in r:
            lines.append(f"--- round {r['round']} {r['workers']} workers log ---\n{r['log_tail']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", "-j", type=int, default=200, help="jobs per run (200)")
    parser.add_argument("--workers", default="1,4", help="worker process counts (1,4)")
    parser.add_argument("--steps", "-s", type=int, default=3, help="GETs per job (3)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="endpoint delay (200)")
    parser.add_argument(
        "--worker-concurrency", type=int, default=4, help="jobs one worker runs at once (4)"
    )
    parser.add_argument("--portal-cap", type=int, default=64, help="portal's max_concurrency")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (2)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per run, seconds")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PORTWRIGHT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
        help="server URL without a database; the run creates and drops its own",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        counts = [int(part) for part in args.workers.split(",")]
    except ValueError:
        raise SystemExit(f"--workers: {args.workers!r} is not a comma-separated list") from None
    if not counts or min(counts) < 1 or max(counts) > 16:
        raise SystemExit("--workers: each count must be between 1 and 16")
    if min(args.jobs, args.steps, args.worker_concurrency, args.portal_cap, args.rounds) < 1:
        raise SystemExit("--jobs, --steps, --worker-concurrency, --portal-cap, --rounds >= 1")
    if not 0 <= args.latency_ms <= 10_000:
        raise SystemExit("--latency-ms must be between 0 and 10000")
    from portwright.observability import configure_logging
    from portwright.settings import Settings

    configure_logging(Settings(log_level="WARNING", log_json=False))
    started = time.monotonic()
    results = asyncio.run(run_all(args, counts))
    print(render(args, counts, results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\n(total {time.monotonic() - started:.0f}s)", file=sys.stderr)
    failed = any("error" in r or r.get("problems") for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
