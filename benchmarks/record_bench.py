"""CPU per item of a chunk's record step and of its fetch step's reads (issue 14), paired:
the code under test against a baseline source tree, alternating, in fresh processes.

Each round starts one child per tree (`PYTHONPATH=<tree>/src`), alternating which goes
first. A child opens a fresh database (SQLite file or PostgreSQL database), accepts
`--items` `scrape` jobs in their initial state (`insert_many`), and for each sub-chunk of
`SUB_CHUNK` items measures `time.process_time()` of:

- `reads`: what `ChunkRunner.fetch` reads before it runs the items (`ChunkRunner._read`,
  `Runtime.sites_holding`, `Runtime.selectors_for`), on a stand-in runtime (the real
  store, registry and those methods; no DBOS; the thread hops not counted);
- `record`: `ChunkRunner._record` of synthetic fetched results (each item's two
  transitions and an output the size of a scrape's), all recorded;
- `checkpoint`: DBOS's default serializer (pickle + base64) of the fetch step's return
  value, then its deserialization (what `record_step_result` and a replay pay).

It prints each tree's median (and range of) microseconds per item per phase over the
rounds (each round's figure is the median over its sub-chunks), and after ÷ before of the
medians and of the minima.

    python benchmarks/record_bench.py --before /tmp/record-before --rounds 5
    python benchmarks/record_bench.py --before /tmp/record-before --database postgres
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _output(i: int) -> dict[str, Any]:
    """An output shaped like a static scrape's (a stored result, its metadata)."""
    return {
        "url": f"http://127.0.0.1:9/product/{i}",
        "final_url": f"http://127.0.0.1:9/product/{i}",
        "status_code": 200,
        "engine": "http",
        "content_type": "text/html; charset=utf-8",
        "elapsed_ms": 3.2,
        "result": {
            "id": f"res_{i:08d}",
            "kind": "html",
            "size": 5321,
            "sha256": "ab" * 32,
            "blob_key": f"results/t1/res_{i:08d}.html",
        },
        "title": f"Product {i}",
        "headers": {"content-type": "text/html", "server": "sandbox"},
    }


def child(database: str, items: int) -> dict[str, list[float]]:
    import base64
    import pickle

    from portwright.adapters import AdapterRegistry
    from portwright.adapters.scrape import ScrapeAdapter
    from portwright.orchestrator._chunks import SUB_CHUNK, ChunkRunner
    from portwright.orchestrator._runtime import Runtime
    from portwright.store import Store
    from portwright.store._jobs import NewJob

    store = Store.open(database)
    adapter = ScrapeAdapter
    machine = adapter.machine
    registry = AdapterRegistry()
    registry.register(adapter)
    store.portals.ensure(adapter.portal_name(), max_concurrency=8)

    class Inputs:
        @staticmethod
        def open(tenant_id: str, model: Any, data: Any) -> Any:
            return data

    class FakeRuntime:
        sites_holding = Runtime.sites_holding
        site_of = Runtime.site_of
        selectors_for = Runtime.selectors_for

        def __init__(self) -> None:
            self.store = store
            self.registry = registry
            self.inputs = Inputs()
            self._lock = threading.Lock()
            self._selector_cache: dict[str, Any] = {}

        def machine_of(self, name: str) -> Any:
            return machine

        def record_portal_outcome(self, portal: str, *, ok: bool, site: Any = None) -> None:
            raise AssertionError("the breaker is closed in this benchmark")

        def enqueue_many(self, jobs: Any) -> int:
            raise AssertionError("no item leaves in this benchmark")

    rt: Any = FakeRuntime()
    tenant = store.tenants.ensure("bench").id
    ids = [f"job_{i:08d}" for i in range(items)]
    new = [
        NewJob(
            job_id=job_id,
            tenant_id=tenant,
            adapter=adapter.name,
            adapter_version=adapter.version,
            portal=adapter.portal_name(),
            state=machine.initial,
            status=machine.status_of(machine.initial),
            input={"url": f"http://127.0.0.1:9/product/{i}", "batch_id": "batch_1"},
            lock_key=None,
            priority=0,
            actor="api",
            notes={"chunk": "chunk_x"},
        )
        for i, job_id in enumerate(ids)
    ]
    with store.engine.begin() as conn:
        store.jobs.insert_many(conn, new)
    runner = ChunkRunner(rt, adapter, "chunk_x")
    portal = adapter.portal_name()
    out: dict[str, list[float]] = {"reads": [], "record": [], "checkpoint": []}
    for start in range(0, items, SUB_CHUNK):
        part = ids[start : start + SUB_CHUNK]
        began = time.process_time()
        read = runner._read(part, portal)
        if len(read) == 2:  # the baseline's: the site and selector reads came apart
            jobs, gate = read
            held = rt.sites_holding(jobs)
            rt.selectors_for(adapter)
        else:
            jobs, gate, held, _ = read
        out["reads"].append((time.process_time() - began) / len(part))
        assert gate is None
        assert not held
        assert len(jobs) == len(part)
        fetched = [
            {
                "id": job.id,
                "seq": job.seq,
                "ok": True,
                "changes": [
                    {
                        "to_state": state,
                        "actor": f"adapter:{adapter.name}",
                        "reason": "",
                        "meta": {},
                        "updates": None,
                        "kind": "transition",
                    }
                    for state in ("QUEUED", "FETCHING")
                ],
                "output": _output(start + n),
            }
            for n, job in enumerate(jobs)
        ]
        began = time.process_time()
        blob = base64.b64encode(pickle.dumps(fetched)).decode()
        pickle.loads(base64.b64decode(blob))
        out["checkpoint"].append((time.process_time() - began) / len(part))
        began = time.process_time()
        counts = runner._record(fetched)
        out["record"].append((time.process_time() - began) / len(part))
        assert counts == {"recorded": len(part), "left": 0, "skipped": 0}, counts
    done = store.jobs.get_many(ids)
    assert all(job.status == "succeeded" for job in done)
    store.close()
    return out


def _run_child(tree: Path, database: str, items: int) -> dict[str, float]:
    from benchlib import DEFAULT_POSTGRES, fresh_pg_database

    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}:{HERE}"}
    with tempfile.TemporaryDirectory() as tmp:
        if database == "postgres":
            with fresh_pg_database(DEFAULT_POSTGRES, "record_bench") as url:
                raw = _spawn(env, url, items)
        else:
            raw = _spawn(env, f"sqlite:///{tmp}/bench.db", items)
    return {phase: statistics.median(values) * 1e6 for phase, values in raw.items()}


def _spawn(env: dict[str, str], url: str, items: int) -> dict[str, list[float]]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, "--items", str(items)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=False, help="baseline tree (has src/)")
    parser.add_argument("--after", type=Path, default=ROOT, help="tree under test")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.items)))
        return
    if args.before is None:
        parser.error("--before is required")
    trees = {"before": args.before, "after": args.after}
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for index in range(args.rounds):
        order = ["before", "after"] if index % 2 == 0 else ["after", "before"]
        for name in order:
            runs[name].append(_run_child(trees[name], args.database, args.items))
        line = "  ".join(
            f"{name} " + " ".join(f"{k}={v:.0f}" for k, v in runs[name][-1].items())
            for name in ("before", "after")
        )
        print(f"round {index + 1}: {line}", flush=True)
    print(f"\n{args.database}, {args.items} items, {args.rounds} rounds: µs CPU per item")
    print(f"{'phase':<12}{'before':>16}{'after':>16}{'÷ medians':>11}{'÷ minima':>10}")
    for phase in runs["before"][0]:
        b = [r[phase] for r in runs["before"]]
        a = [r[phase] for r in runs["after"]]
        bm, am = statistics.median(b), statistics.median(a)
        print(
            f"{phase:<12}{bm:>8.0f} ({min(b):.0f}-{max(b):.0f})"
            f"{am:>8.0f} ({min(a):.0f}-{max(a):.0f}){am / bm:>11.2f}{min(a) / min(b):>10.2f}"
        )
    print(
        "(`checkpoint` runs the same code in both trees: its ratio is the machine's noise; on a"
        " shared machine the minima, what a run costs undisturbed, are the steadier figure)"
    )


if __name__ == "__main__":
    main()
