"""An idle worker's cost (issue 14): one `portwright worker` (the default registry, its
whole stack) on a fresh, empty database, no work; its process CPU (/proc ticks) over
`--seconds` (20) after `--settle` (5) seconds alive, and how often DBOS reloaded a queue's
row (`SystemDatabase.get_queue`, counted by a wrapper installed in the worker before it
starts: the calls from DBOS's queue poll threads and from anything else).

With `--before-src DIR` (a `src` tree of the code before), each round runs the worker on
that tree and on this one, alternating the order by round (`--rounds`, 3), on each
database (`--database sqlite|postgres|both`). Prints one line per run and the medians.

    python benchmarks/idle_worker.py --database both --rounds 3 --before-src /tmp/x/src
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import DEFAULT_POSTGRES, cpu_seconds, fresh_pg_database

HERE = Path(__file__).resolve().parent
OWN_SRC = HERE.parent / "src"
MASTER_KEY = "idle-bench-master-key-0123456789abcdef"

# Run in the worker process: count `get_queue` by caller thread, dump the counts to a file
# every 0.5 s, then the CLI's `portwright worker`.
_WRAPPER = """
import json, os, sys, threading, time
from dbos._sys_db import SystemDatabase
counts = {"poll": 0, "other": 0}
original = SystemDatabase.get_queue
def get_queue(self, *args, **kwargs):
    kind = "poll" if threading.current_thread().name.startswith("queue-worker-") else "other"
    counts[kind] += 1
    return original(self, *args, **kwargs)
SystemDatabase.get_queue = get_queue
out = os.environ["IDLE_BENCH_COUNTS"]
def dump():
    while True:
        with open(out + ".tmp", "w") as f:
            json.dump({**counts, "at": time.monotonic()}, f)
        os.replace(out + ".tmp", out)
        time.sleep(0.5)
threading.Thread(target=dump, daemon=True).start()
sys.argv = ["portwright", "worker", "--worker-id", os.environ["PORTWRIGHT_WORKER_ID"]]
from portwright.cli import main
sys.exit(main())
"""


def _counts(path: Path) -> dict[str, float]:
    for _ in range(50):
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(path.read_text()))
        time.sleep(0.1)
    raise RuntimeError(f"no counts in {path}")


def run_once(src: Path, database: str, settle_s: float, seconds: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="idle-worker-"))
    with contextlib.ExitStack() as stack:
        if database == "postgres":
            base = DEFAULT_POSTGRES
            url = stack.enter_context(fresh_pg_database(base, "pw_idle"))
        else:
            url = f"sqlite:///{tmp / 'app.sqlite'}"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(src), str(HERE.parent)]),
            "PORTWRIGHT_DATABASE_URL": url,
            "PORTWRIGHT_DATA_DIR": str(tmp / "data"),
            "PORTWRIGHT_MASTER_KEY": MASTER_KEY,
            "PORTWRIGHT_LOG_LEVEL": "WARNING",
            "PORTWRIGHT_CHROMIUM": "none",
            "PORTWRIGHT_WORKER_ID": "idle-0",
            "IDLE_BENCH_COUNTS": str(tmp / "counts.json"),
        }
        portwright = str(Path(sys.executable).parent / "portwright")
        subprocess.run([portwright, "migrate"], env=env, check=True, capture_output=True)
        log = (tmp / "worker.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            from sqlalchemy import create_engine, text

            engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            deadline = time.monotonic() + 120
            while True:  # until the worker heartbeats as alive
                if proc.poll() is not None:
                    raise RuntimeError(f"the worker exited; see {tmp / 'worker.log'}")
                with contextlib.suppress(Exception), engine.connect() as conn:
                    if conn.execute(text("SELECT count(*) FROM workers")).scalar():
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the worker never came up; see {tmp / 'worker.log'}")
                time.sleep(0.2)
            engine.dispose()
            time.sleep(settle_s)
            counts0, cpu0 = _counts(tmp / "counts.json"), cpu_seconds(proc.pid)
            time.sleep(seconds)
            counts1, cpu1 = _counts(tmp / "counts.json"), cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
    span = counts1["at"] - counts0["at"] or 1.0
    return {
        "cpu_s": cpu1 - cpu0,
        "poll_get_queue_per_s": (counts1["poll"] - counts0["poll"]) / span,
        "other_get_queue_per_s": (counts1["other"] - counts0["other"]) / span,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--before-src", type=Path, default=None)
    args = parser.parse_args()
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    trees = [("after", OWN_SRC)]
    if args.before_src is not None:
        trees.insert(0, ("before", args.before_src.resolve()))
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for database in databases:
        for round_ in range(args.rounds):
            order = trees if round_ % 2 == 0 else trees[::-1]
            for name, src in order:
                load = os.getloadavg()[0]
                got = run_once(src, database, args.settle, args.seconds)
                results.setdefault((database, name), []).append(got)
                print(
                    f"{database} round {round_ + 1} {name}: CPU {got['cpu_s']:.2f} s over "
                    f"{args.seconds:g} s; get_queue {got['poll_get_queue_per_s']:.1f}/s from "
                    f"the poll threads, {got['other_get_queue_per_s']:.2f}/s other "
                    f"(load {load:.2f})",
                    flush=True,
                )
    for (database, name), runs in results.items():
        cpus = [r["cpu_s"] for r in runs]
        polls = [r["poll_get_queue_per_s"] for r in runs]
        print(
            f"{database} {name}: CPU median {statistics.median(cpus):.2f} s "
            f"({min(cpus):.2f}-{max(cpus):.2f}); poll get_queue median "
            f"{statistics.median(polls):.1f}/s"
        )


if __name__ == "__main__":
    main()
