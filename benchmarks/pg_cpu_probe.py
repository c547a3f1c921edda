"""PostgreSQL's CPU and statements over one `batch_bench.py` batch (issue 14).

Run by `batch_bench.py`'s hooks on a server with `pg_stat_statements` loaded
(`shared_preload_libraries`; `pg_stat_statements.track_planning = on` for plan times):

    PWBENCH_BEFORE_BATCH='python benchmarks/pg_cpu_probe.py start' \
    PWBENCH_AT_BATCH='python benchmarks/pg_cpu_probe.py wait' \
    python benchmarks/batch_bench.py --items 1000 --database postgres --split 2 \
        --postgres postgresql://postgres@127.0.0.1:5499

`start` (waited for, before the POST): resets `pg_stat_statements` and snapshots the CPU
(utime+stime from /proc) of the Portwright processes (`PW_*` pids) and of the server's
processes (their command line starts with `PGCPU_CLUSTER`, default "postgres: "; a
private instance's `cluster_name` keeps other databases' backends out). `wait` (started
at the POST): waits until `PGCPU_ITEMS` + 3 (the warm-up) jobs have finished, snapshots
again and writes `PGCPU_OUT/<shape>-<before|after>-<time>.json`: the CPU per process
kind and the bench database's statements (calls, plans, exec and plan ms, rows, WAL).
"before" is a run whose first worker's PYTHONPATH holds `PGCPU_BEFORE`
(`--before-src`). The bench database is the newest `pwbench_batch_*` on the server.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

HZ = os.sysconf("SC_CLK_TCK")
PORT = os.environ.get("PGCPU_PORT", "5499")
ITEMS = int(os.environ.get("PGCPU_ITEMS", "1000"))
OUT = Path(os.environ.get("PGCPU_OUT", "/tmp/pgcpu-runs"))
CLUSTER = os.environ.get("PGCPU_CLUSTER", "postgres: ")
BEFORE = os.environ.get("PGCPU_BEFORE", "-before")
STATE = OUT / "state.json"
COLUMNS = ("query", "calls", "plans", "total_exec_time", "total_plan_time", "rows", "wal_bytes")


def _cpu(pid: str) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / HZ


def _kinds(database: str) -> dict[str, str]:
    """{pid: kind} of the Portwright processes and the server's."""
    kinds = {pid: "gateway" for pid in os.environ.get("PW_GATEWAY", "").split(",") if pid}
    kinds |= {pid: "relay" for pid in os.environ.get("PW_RELAY", "").split(",") if pid}
    kinds |= {pid: "stack" for pid in os.environ.get("PW_STACK", "").split(",") if pid}
    workers = [pid for pid in os.environ.get("PW_WORKERS", "").split(",") if pid]
    kinds |= {pid: f"worker{i}" for i, pid in enumerate(workers)}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command.startswith(CLUSTER):
            backend = f" {database} " in command
            kinds[entry.name] = "pg_backends" if backend else "pg_other"
    return kinds


def _statement(row: Any) -> dict[str, Any]:
    """A `pg_stat_statements` row as JSON (`wal_bytes` is a numeric: a string)."""
    values = dict(zip(COLUMNS, row, strict=True))
    values["wal_bytes"] = str(values["wal_bytes"])
    return values


def _snapshot(database: str) -> dict[str, tuple[str, float | None]]:
    return {pid: (kind, _cpu(pid)) for pid, kind in _kinds(database).items()}


def main(mode: str) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    dsn = f"host=127.0.0.1 port={PORT} user=postgres"
    with psycopg.connect(f"{dsn} dbname=postgres", autocommit=True) as admin:
        found = admin.execute(
            "SELECT datname, oid FROM pg_database WHERE datname LIKE 'pwbench_batch_%' "
            "ORDER BY oid DESC LIMIT 1"
        ).fetchone()
        if found is None:
            print("pg_cpu_probe: no bench database", file=sys.stderr)
            return 1
        database, oid = found
        if mode == "start":
            admin.execute("SELECT pg_stat_statements_reset()")
            state = {"db": database, "t0": time.time(), "cpu": _snapshot(database)}
            STATE.write_text(json.dumps(state))
            return 0
        state = json.loads(STATE.read_text())
        if state["db"] != database:
            print("pg_cpu_probe: `start` ran for another database", file=sys.stderr)
            return 1
        done = 0
        with psycopg.connect(f"{dsn} dbname={database}", autocommit=True) as conn:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT /* pg_cpu_probe */ count(*) FROM jobs WHERE finished_at IS NOT NULL"
                ).fetchone()
                done = int(row[0]) if row else 0
                if done >= ITEMS + 3:
                    break
                time.sleep(0.2)
        t1 = time.time()
        after = _snapshot(database)
        statements = admin.execute(
            f"SELECT {', '.join(COLUMNS)} FROM pg_stat_statements "
            "WHERE dbid = %s AND query NOT LIKE '%%pg_cpu_probe%%'",
            (oid,),
        ).fetchall()
    cpu: dict[str, float] = {}
    for pid, (kind, spent) in after.items():
        if spent is not None:
            began = state["cpu"].get(pid, [kind, 0.0])[1] or 0.0
            cpu[kind] = cpu.get(kind, 0.0) + spent - began
    first = next((p for p in os.environ.get("PW_WORKERS", "").split(",") if p), None)
    first = first or os.environ.get("PW_STACK", "").split(",")[0]
    environ = Path(f"/proc/{first}/environ").read_bytes() if first else b""
    # the tree a process imports from is on its PYTHONPATH (the PGCPU_BEFORE variable itself
    # is in every process's environment, so the whole environment cannot tell them apart)
    path = next((v for v in environ.split(b"\0") if v.startswith(b"PYTHONPATH=")), b"")
    tag = "before" if BEFORE.encode() in path else "after"
    shape = "split" if os.environ.get("PW_WORKERS") else "stack"
    result: dict[str, Any] = {
        "db": database,
        "shape": shape,
        "tag": tag,
        "seconds": t1 - state["t0"],
        "done": done,
        "cpu": cpu,
        "statements": [_statement(row) for row in statements],
    }
    path = OUT / f"{shape}-{tag}-{int(state['t0'])}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"pg_cpu_probe: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "wait"))
