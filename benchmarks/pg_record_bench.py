"""PostgreSQL's CPU in a chunk's record transaction per item, without the rest of a batch.

What `ChunkRunner._record` writes for each recorded sub-chunk (issue 14): the jobs locked
(`lock_many`), their events and row (`write_events_many`), their outbox rows
(`add_many`), the breaker's successes (`add_outcomes`), with the rows a scrape batch
writes (three transitions an item, a ~1.3 KB output, three outbox rows). Each source
tree given runs on a database of its own (migrated by that tree), in turns (ABBA…), on a
jobs table prefilled with finished jobs (`--prefill`), and reports the CPU of the
server's backend (its time on a CPU, /proc/<pid>/schedstat) and of this process per item: medians.

    python benchmarks/pg_record_bench.py --postgres postgresql://postgres@127.0.0.1:5481 \
        --src before=/tmp/before/src --src after=src --rounds 6

`--role NAME` runs the writes as a role without BYPASSRLS (created if missing), so the
tables' row-level security policies are evaluated as in a deployment; the default
(the URL's user, a superuser) skips them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUTPUT = {
    "url": "http://127.0.0.1:40651/product/1",
    "html": '<!doctype html><html lang="en"><head><meta charset="utf-8">' + "x" * 740,
    "rung": "http",
    "tier": "http",
    "bytes": 803,
    "proxy": None,
    "title": "Classic White Notebook L111",
    "engine": "http",
    "status": 200,
    "credits": 1,
    "attempts": [
        {"rung": "http", "proxy": None, "detail": "200", "outcome": "ok", "elapsed_s": 0.006}
    ],
    "elapsed_s": 0.02,
    "extracted": {},
    "final_url": "http://127.0.0.1:40651/product/1",
    "proxy_tier": None,
    "captcha_solved": False,
}
INPUT = {
    "url": "http://127.0.0.1:40651/product/1",
    "trace": False,
    "engine": "http",
    "extract": {},
    "webhook": None,
    "batch_id": "bat_01a25225ba176a12c971c8",
    "wait_for": None,
    "proxy_tier": None,
    "screenshot": False,
    "session_id": None,
    "proxy_country": None,
    "respect_robots": True,
}


def _cpu(pid: int) -> float:
    """The process's time on a CPU, in seconds (to the nanosecond: /proc/<pid>/schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def child(args: argparse.Namespace) -> int:
    """One tree's run of `--items` on its database: prints JSON {backend, python} seconds."""
    import sqlalchemy as sa

    from portwright._ids import new_id
    from portwright.orchestrator._tx import batch_rows, outbox_rows, plan_changes
    from portwright.sdk import linear_machine
    from portwright.store import Store
    from portwright.store._jobs import NewJob
    from portwright.store._schema import tenants

    machine = linear_machine("scrape", ["FETCHING"])
    url = args.url
    if args.role:  # the whole run as that role: its database's owner, bound by FORCE RLS
        url = sa.make_url(url).set(username=args.role).render_as_string(hide_password=False)
    store = Store.open(url, pool_size=1)
    tenant = "ten_bench"
    with store.engine.begin() as conn:
        if conn.execute(sa.select(tenants.c.id).where(tenants.c.id == tenant)).first() is None:
            conn.execute(tenants.insert().values(id=tenant, name="bench", created_at=time.time()))
    if args.prefill:
        _prefill(store.engine, tenant, args.prefill)
    fresh = [
        NewJob(
            job_id=new_id("job"),
            tenant_id=tenant,
            adapter="scrape",
            adapter_version="1",
            portal="scrape",
            state="INIT",
            status="queued",
            input=INPUT,
            lock_key=None,
            priority=0,
            actor="api:bench",
            notes={"chunk": "chunk_bench"},
        )
        for _ in range(args.items)
    ]
    with store.engine.begin() as conn:
        store.jobs.insert_many(conn, fresh)
    ids = sorted(new.job_id for new in fresh)
    changes = [
        {
            "to_state": s,
            "actor": "adapter:scrape",
            "reason": "",
            "meta": {},
            "updates": None,
            "kind": "transition",
        }
        for s in ("QUEUED", "FETCHING")
    ]

    def success(i: int) -> dict[str, Any]:  # each item's own output, as a chunk's are
        output = {**OUTPUT, "url": f"{OUTPUT['url']}{i}", "final_url": f"{OUTPUT['url']}{i}"}
        return {
            "to_state": "SUCCEEDED",
            "actor": "engine",
            "reason": "completed",
            "meta": {},
            "updates": {"output": output},
            "kind": "transition",
        }

    with store.engine.connect() as conn:
        pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
    backend, python = _cpu(pid), time.process_time()
    for start in range(0, len(ids), args.chunk):
        wanted = ids[start : start + args.chunk]
        with store.engine.begin() as conn:
            state = store.portals.breaker_state(conn, "portal:scrape")
            locked = store.jobs.lock_many(conn, wanted)
            writes, outbox = [], []
            for n, job_id in enumerate(wanted, start):
                job = locked[job_id]
                events, values, illegal = plan_changes(job, machine, [*changes, success(n)])
                assert illegal is None
                writes.append((job, events, values))
                outbox += outbox_rows(job, events, values)
            store.jobs.write_events_many(conn, writes)
            store.outbox.add_many(conn, outbox + batch_rows(conn, outbox))
            if state == "closed":
                store.portals.add_outcomes(conn, "portal:scrape", [True] * len(writes))
    out = {"backend": _cpu(pid) - backend, "python": time.process_time() - python}
    with store.engine.connect() as conn:
        out["pid_same"] = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()) == pid
    print(json.dumps(out))
    return 0


def _prefill(engine: Any, tenant: str, n: int) -> None:
    """`n` finished jobs with their four events and three outbox rows (published), once a
    database, then ANALYZE (what autovacuum would do)."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        if conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one() >= n:
            return
        params = {"t": tenant, "n": n, "i": json.dumps(INPUT), "o": json.dumps(OUTPUT)}
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, tenant_id, adapter, adapter_version, portal, state, status, "
                "input, output, notes, seq, priority, paused, cancel_requested, attempts, "
                "created_at, updated_at, finished_at) SELECT 'job_old' || lpad(g::text, 9, '0'), "
                ":t, 'scrape', '1', 'scrape', 'SUCCEEDED', 'succeeded', CAST(:i AS jsonb), "
                "CAST(:o AS jsonb), '{}'::jsonb, 4, 0, false, false, 0, g, g, g "
                "FROM generate_series(1, :n) g"
            ),
            params,
        )
        conn.execute(
            sa.text(
                "INSERT INTO job_events (job_id, tenant_id, seq, kind, actor, from_state, "
                "to_state, reason, meta, created_at) "
                "SELECT 'job_old' || lpad(g::text, 9, '0'), :t, s, "
                "'transition', 'engine', 'A', 'B', '', '{}'::jsonb, g "
                "FROM generate_series(1, :n) g, generate_series(1, 4) s"
            ),
            params,
        )
        conn.execute(
            sa.text(
                "INSERT INTO outbox (event_id, tenant_id, topic, subject, platform, payload, "
                "created_at) SELECT 'job_old' || lpad(g::text, 9, '0') || ':' || s, :t, "
                "'job.succeeded', 'job_old' || lpad(g::text, 9, '0'), 'scrape', "
                "jsonb_build_object('job_id', g, 'seq', s, 'reason', 'completed'), g "
                "FROM generate_series(1, :n) g, generate_series(2, 4) s"
            ),
            params,
        )
        conn.execute(sa.text("DELETE FROM outbox_pending"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("jobs", "job_events", "outbox", "outbox_pending"):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--src", action="append", required=True, metavar="TAG=DIR")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--prefill", type=int, default=0, help="finished jobs first (each db)")
    parser.add_argument("--role", default="")
    parser.add_argument("--statements", action="store_true", help="pg_stat_statements per run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    import psycopg

    trees = dict(item.split("=", 1) for item in args.src)
    admin = psycopg.connect(args.postgres, autocommit=True)
    if args.role:
        admin.execute(
            f"DO $$ BEGIN CREATE ROLE {args.role} LOGIN NOSUPERUSER NOBYPASSRLS; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    urls = {}
    for tag in trees:
        name = f"recbench_{tag}"
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}" + (f" OWNER {args.role}" if args.role else ""))
        urls[tag] = args.postgres.rsplit("/", 1)[0] + "/" + name
    results: dict[str, list[dict[str, float]]] = {tag: [] for tag in trees}
    order = list(trees)
    for rnd in range(args.rounds):
        for tag in order if rnd % 2 == 0 else order[::-1]:
            if args.statements:
                admin.execute("SELECT pg_stat_statements_reset()")
            env = {**os.environ, "PYTHONPATH": f"{trees[tag]}:{Path.cwd()}"}
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--url",
                    urls[tag],
                    "--postgres",
                    "x",
                    "--src",
                    "x",
                    "--items",
                    str(args.items),
                    "--chunk",
                    str(args.chunk),
                    "--role",
                    args.role,
                    "--prefill",
                    str(args.prefill),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                print(done.stderr[-3000:])
                return 1
            row = json.loads(done.stdout.strip().splitlines()[-1])
            results[tag].append(row)
            print(
                f"round {rnd} {tag}: backend {row['backend'] / args.items * 1e6:.0f} µs/item, "
                f"python {row['python'] / args.items * 1e6:.0f} µs/item",
                flush=True,
            )
            if args.statements:
                rows = admin.execute(
                    "SELECT s.total_exec_time, s.calls, s.rows, s.wal_bytes, s.shared_blks_hit, "
                    "s.shared_blks_dirtied, left(s.query, 90) FROM pg_stat_statements s "
                    "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s "
                    "ORDER BY 1 DESC LIMIT 12",
                    (f"recbench_{tag}",),
                ).fetchall()
                for r in rows:
                    print(
                        f"   {r[0]:8.1f} ms {r[1]:6d} calls {r[2]:6d} rows "
                        f"wal {int(r[3]) // 1024:6d}K hit {r[4]:7d} dirt {r[5]:5d} {r[6]!r}"
                    )
    for tag, rows in results.items():
        b = statistics.median(r["backend"] for r in rows) / args.items * 1e6
        p = statistics.median(r["python"] for r in rows) / args.items * 1e6
        print(f"{tag}: median backend {b:.0f} µs/item, python {p:.0f} µs/item ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
