"""Where a `POST /v1/batch` spends its time (issue 14): one batch of `batch_bench.py`'s
stack, with the stack process's CPU, optionally a span timeline and a py-spy profile.

The parent hosts the sandbox's `scrape-static` catalogue (rate limit lifted) as
`batch_bench.py` does; a child starts the same stack on a fresh database, runs the 3-URL
warm-up, then, for one batch of `--items` URLs:

- prints the stack process's CPU seconds over the batch and the cores that makes;
- `--spans`: times each curl_cffi request, each item's run, each sub-chunk's fetch and
  record step (monotonic, from the first POST), prints their count, mean, p50/p90 and how
  many were in flight on average, and writes them to `--spans-json` for a timeline;
- `--threads`: prints each thread's CPU seconds over the batch (from `/proc/self/task`,
  threads of one pool summed under one name): which part of the stack the CPU went to,
  without a profiler's overhead;
- `--py-spy PATH`: attaches that py-spy binary to the stack process for the batch only
  (`py-spy record --pid … --rate 250 --format raw`, plus `--py-spy-arg`s such as `--gil`
  or `--idle`) and writes the collapsed stacks to `--out`;
- `--count-get-queue`: prints how many times DBOS reloaded a queue's row
  (`SystemDatabase.get_queue`) from its queue poll threads over the batch, and per second.

    python benchmarks/batch_profile.py --database sqlite --spans
    python benchmarks/batch_profile.py --database postgres --py-spy /tmp/pyspy/bin/py-spy \\
        --out /tmp/pg.raw
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import DEFAULT_POSTGRES, fresh_pg_database, static_site, static_urls

Span = tuple[str, float, float]


def _timed(owner: Any, name: str, tag: str, spans: list[Span]) -> None:
    """Wrap the coroutine method `owner.name` to note (tag, start, end) of each call."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            spans.append((tag, began, time.perf_counter()))

    setattr(owner, name, timed)


def _install_spans(spans: list[Span]) -> None:
    from curl_cffi.requests import AsyncSession

    from portwright.engines._politeness import Politeness
    from portwright.engines.ladder._http import CurlFetcher
    from portwright.engines.ladder._ladder import Ladder
    from portwright.orchestrator import _chunks
    from portwright.orchestrator._chunks import ItemJob
    from portwright.resources.ssrf._guard import UrlGuard

    _timed(AsyncSession, "request", "request", spans)
    _timed(CurlFetcher, "fetch", "curl rung", spans)
    _timed(Ladder, "fetch", "ladder", spans)
    _timed(Ladder, "_start", "ladder start", spans)
    _timed(Politeness, "allowed", "robots check", spans)
    _timed(UrlGuard, "check", "ssrf check", spans)
    _timed(ItemJob, "step", "item step", spans)
    _timed(_chunks.ChunkRunner, "_run_item", "item", spans)
    _timed(_chunks.ChunkRunner, "fetch", "subchunk fetch", spans)
    _timed(_chunks.ChunkRunner, "record", "subchunk record", spans)


def _report(spans: list[Span], began: float) -> dict[str, list[tuple[float, float]]]:
    kept = [(tag, a - began, b - began) for tag, a, b in spans if a >= began]
    if not kept:
        return {}
    end = max(b for _, _, b in kept)
    by_tag: dict[str, list[tuple[float, float]]] = {}
    for tag, a, b in kept:
        by_tag.setdefault(tag, []).append((a, b))
    for tag, pairs in by_tag.items():
        lengths = sorted(b - a for a, b in pairs)
        print(
            f"SPAN {tag:16} n={len(pairs):5d} mean={statistics.mean(lengths) * 1000:7.2f} ms "
            f"p50={lengths[len(lengths) // 2] * 1000:7.2f} "
            f"p90={lengths[int(len(lengths) * 0.9)] * 1000:7.2f} "
            f"first={min(a for a, _ in pairs):.3f}s in_flight={sum(lengths) / end:.2f}",
            flush=True,
        )
    return by_tag


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each of this process's threads so far, by name, the
    numbered threads of one pool summed ("dbos-executor-3" → "dbos-executor-*")."""
    import re
    import threading

    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    totals: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            comm = (task / "comm").read_text().strip()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        name = re.sub(r"[-_]*\d+$", "-*", names.get(int(task.name)) or comm)
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def _count_get_queue() -> list[int]:
    """Count `SystemDatabase.get_queue` calls from DBOS's queue poll threads: [count]."""
    import threading

    from dbos._sys_db import SystemDatabase

    counted = [0]
    original = SystemDatabase.get_queue

    def get_queue(self: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("queue-worker-"):
            counted[0] += 1
        return original(self, *args, **kwargs)

    SystemDatabase.get_queue = get_queue  # type: ignore[method-assign]
    return counted


def child(args: argparse.Namespace, urls_file: str, database_url: str) -> None:
    import batch_bench as bb
    import httpx

    from portwright.cli._stack import start_stack
    from portwright.gateway.auth import issue_key
    from portwright.observability import configure_logging
    from portwright.settings import Settings

    configure_logging(Settings(log_level="WARNING", log_json=False))
    spans: list[Span] = []
    if args.spans:
        _install_spans(spans)
    get_queues = _count_get_queue() if args.count_get_queue else [0]
    urls = json.loads(Path(urls_file).read_text())
    tmp = Path(tempfile.mkdtemp(prefix="batch-profile-"))
    database_url = database_url or f"sqlite:///{tmp / 'app.sqlite'}"
    allow = [urls[0].split("/")[2]]
    settings = bb._settings(tmp / "data", database_url, 8, allow)
    loop = bb.as_portwright_starts(settings, args.event_loop)  # as `portwright up` chooses
    print(f"event loop {loop}", flush=True)
    stack = start_stack(settings, world=None)
    bb.as_portwright_up(settings)  # the collector as `portwright up` tunes it
    store = stack.runtime.store
    issued = issue_key(store, tenant="bench", plan="enterprise")
    tenant = issued.record.tenant_id
    headers = {"authorization": f"Bearer {issued.key}"}
    spy: subprocess.Popen[bytes] | None = None
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=3600) as api:
        warm = bb._post_batches(api, urls[:3])
        deadline = time.monotonic() + 120
        while bb._ended(store.engine, tenant)[0] < len(warm) and time.monotonic() < deadline:
            time.sleep(0.1)
        if args.py_spy:
            command = [args.py_spy, "record", "--pid", str(os.getpid()), "--rate", "250"]
            command += ["--format", "raw", "--nonblocking", "-o", args.out, *args.py_spy_arg]
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)  # attached before the batch
        cpu = os.times()
        switches = resource.getrusage(resource.RUSAGE_SELF)
        threads = _thread_cpu() if args.threads else {}
        get_queues_before = get_queues[0]
        t0, began = time.time(), time.perf_counter()
        ids = bb._post_batches(api, urls)
        accepted = time.perf_counter() - began
    target = len(ids) + len(warm)
    count, last = 0, None
    deadline = time.monotonic() + 900
    while count < target and time.monotonic() < deadline:
        count, last = bb._ended(store.engine, tenant)
        time.sleep(bb.BATCH_POLL_S)
    wall = time.time() - t0
    used = os.times()
    if args.count_get_queue:
        calls = get_queues[0] - get_queues_before
        print(f"GET_QUEUE {calls} from the poll threads over the batch: {calls / wall:.1f}/s")
    seconds = used.user - cpu.user + used.system - cpu.system
    after_switches = resource.getrusage(resource.RUSAGE_SELF)
    if args.threads:
        after = _thread_cpu()
        spent = {name: after[name] - threads.get(name, 0.0) for name in after}
        for name, cpu_s in sorted(spent.items(), key=lambda item: -item[1]):
            if cpu_s >= 0.01:
                print(f"THREAD {cpu_s:6.2f} s  {cpu_s / len(urls) * 1000:5.2f} ms/page  {name}")
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=120)
    done = (last - t0) if last is not None and count >= target else None
    print(f"CPU {seconds:.2f} s over {wall:.2f} s: {seconds / wall:.2f} cores", flush=True)
    # the kernel's share and the context switches: threads handing the GIL to each other
    # show as system time and switches, not as Python frames in a profile
    print(
        f"CPU user {used.user - cpu.user:.2f} s, system {used.system - cpu.system:.2f} s; "
        f"context switches {after_switches.ru_nvcsw - switches.ru_nvcsw} voluntary, "
        f"{after_switches.ru_nivcsw - switches.ru_nivcsw} involuntary",
        flush=True,
    )
    by_tag = _report(spans, began)
    if args.spans_json and by_tag:
        Path(args.spans_json).write_text(json.dumps(by_tag))
    pages = f"{len(urls) / done:.1f} pages/s" if done else "not all ended"
    print(f"accepted {accepted:.2f} s, all ended {done or 0:.2f} s: {pages}", flush=True)
    sys.stdout.flush()
    os._exit(0)  # no orderly shutdown of a stack: its measurement is done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--items", "-n", type=int, default=1000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL, no database")
    parser.add_argument("--spans", action="store_true", help="time requests, items, steps")
    parser.add_argument("--spans-json", default="", help="write the spans here")
    parser.add_argument("--threads", action="store_true", help="CPU per thread")
    parser.add_argument("--py-spy", default="", metavar="PATH", help="py-spy binary")
    parser.add_argument("--py-spy-arg", action="append", default=[], help="e.g. --gil")
    parser.add_argument("--out", default="batch-profile.raw", help="py-spy's output")
    parser.add_argument(
        "--event-loop",
        choices=("auto", "uvloop", "asyncio"),
        default=None,
        help="the stack's event loop (default: as `portwright up` chooses, the setting)",
    )
    parser.add_argument("--count-get-queue", action="store_true", help="count row reloads")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args, *args.child)
        return 0
    if not 1 <= args.items <= 10_000:
        raise SystemExit("--items must be between 1 and 10000")
    from portwright.sandbox import SandboxWorld

    with (
        tempfile.TemporaryDirectory(prefix="batch-profile-") as tmp,
        SandboxWorld(static_site(), seed=14) as world,
        contextlib.ExitStack() as stack,
    ):
        urls_file = Path(tmp) / "urls.json"
        urls_file.write_text(json.dumps(static_urls(world.url("scrape-static"), args.items)))
        database_url = ""
        if args.database == "postgres":
            database_url = stack.enter_context(fresh_pg_database(args.postgres, "pwprofile"))
        command = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]
        command += ["--child", str(urls_file), database_url]
        paths = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        done = subprocess.run(command, env=env, timeout=1200, check=False)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
