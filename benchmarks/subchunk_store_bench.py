"""The store work of a chunk's sub-chunk, without the fetches (issue 14): the CPU (this
thread's) `JobRepository.read_many` and `lock_many` spend per item, and `ChunkRunner._record`
per item for sub-chunks of 50 scrape items that each end (two adapter transitions and the
success: what a fetched item of `batch_bench.py` writes), on a fresh database.

A paired comparison alternates this tree and `--before-src DIR` (`git archive main src |
tar -x -C DIR`), ABBA, each run in a child process importing its own tree:

    python benchmarks/subchunk_store_bench.py --database postgres --before-src /tmp/before/src
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
import uuid
from pathlib import Path
from typing import Any

from benchlib import DEFAULT_POSTGRES, fresh_pg_database

ITEMS = 50


def _measure(url: str, rounds: int) -> dict[str, float]:
    from portwright.adapters.scrape import ScrapeAdapter
    from portwright.orchestrator._chunks import ChunkRunner
    from portwright.store import Store

    store = Store.open(url)
    tenant = store.tenants.ensure("bench").id
    machine = ScrapeAdapter.machine

    class Runtime:  # what `_record` uses of the runtime
        def __init__(self) -> None:
            self.store = store

        def machine_of(self, _name: str) -> Any:
            return machine

        def enqueue_many(self, _jobs: Any) -> int:
            return 0

        def record_portal_outcome(self, _portal: str, *, ok: bool) -> None:
            return None

    def new_jobs() -> list[str]:
        ids = []
        for i in range(ITEMS):
            job_id = "j" + uuid.uuid4().hex[:20]
            store.jobs.insert(
                job_id=job_id,
                tenant_id=tenant,
                adapter="scrape",
                adapter_version="1",
                portal="scrape",
                state=machine.initial,
                status=machine.status_of(machine.initial),
                input={"url": f"http://127.0.0.1:9/p{i}.html", "engine": "auto", "extract": {}},
                lock_key=None,
                priority=0,
                actor="bench",
            )
            ids.append(job_id)
        return sorted(ids)

    runner = ChunkRunner(Runtime(), ScrapeAdapter, "chunk_bench")  # type: ignore[arg-type]
    output = {"url": "http://127.0.0.1:9/p.html", "status": 200, "tier": "http", "data": {}}
    spent = {"read_many": 0.0, "lock_many": 0.0, "_record": 0.0}
    for _ in range(rounds):
        ids = new_jobs()
        with store.engine.connect() as conn:
            began = time.thread_time()
            jobs = store.jobs.read_many(conn, ids)
            spent["read_many"] += time.thread_time() - began
        with store.engine.begin() as conn:
            began = time.thread_time()
            store.jobs.lock_many(conn, ids)
            spent["lock_many"] += time.thread_time() - began
        step = {"actor": "adapter:scrape", "reason": "", "meta": {}, "kind": "transition"}
        fetched = [
            {
                "id": job.id,
                "seq": job.seq,
                "ok": True,
                "changes": [{**step, "to_state": "QUEUED"}, {**step, "to_state": "FETCHING"}],
                "output": dict(output),
            }
            for job in jobs
        ]
        began = time.thread_time()
        counts = runner._record(fetched)
        spent["_record"] += time.thread_time() - began
        assert counts["recorded"] == ITEMS, counts
    store.close()
    return {name: s / rounds / ITEMS * 1e6 for name, s in spent.items()}


def _child(database: str, rounds: int, src: str) -> dict[str, float]:
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import subchunk_store_bench as b;"
        "print(json.dumps(b._measure(sys.argv[2], int(sys.argv[3]))))"
    )
    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": src}
    with contextlib.ExitStack() as stack:
        if database == "postgres":
            url = stack.enter_context(fresh_pg_database(DEFAULT_POSTGRES, "subchunk_bench"))
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        else:
            url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/app.sqlite"
        out = subprocess.run(
            [sys.executable, "-c", code, str(here), url, str(rounds)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return {k: float(v) for k, v in json.loads(out.strip().splitlines()[-1]).items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=40, help="sub-chunks of 50 per run")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--before-src", help="the baseline's src directory (ABBA against it)")
    args = parser.parse_args()
    here_src = str(Path(__file__).resolve().parent.parent / "src")
    order = ["after"] if not args.before_src else ["before", "after"]
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for pair in range(args.pairs):  # ABBA: each pair in the order the last one ended
        for which in order if pair % 2 == 0 else order[::-1]:
            src = args.before_src if which == "before" else here_src
            result = _child(args.database, args.rounds, str(src))
            runs[which].append(result)
            load = os.getloadavg()[0]
            shown = "  ".join(f"{k} {v:6.1f}" for k, v in result.items())
            print(f"{which:6s} µs/item  {shown}  (load {load:.1f})", flush=True)
    for which, results in runs.items():
        if results:
            means = {k: statistics.median(r[k] for r in results) for k in results[0]}
            print(f"MEDIAN {which:6s} " + "  ".join(f"{k} {v:6.1f}" for k, v in means.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
