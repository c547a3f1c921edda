"""Batch acceptance (issue 14, part 1): `POST /v1/batch` of N static URLs on the real stack.

For each database (SQLite, PostgreSQL) a fresh subprocess starts the stack as `portwright up`
does (runtime with workers and the scrape fleet, the gateway on uvicorn, the sandbox's
`scrape-static` site with its rate limit lifted), then times, in the same run:

- the acceptance: `POST /v1/batch` of N URLs, request sent → 202 received;
- baseline 1: a bare multi-row INSERT of N rows (same columns as a job row) into a scratch
  table of the same database, in one transaction;
- baseline 2: a bare FastAPI route on the same uvicorn settings parsing the same body into the
  same `BatchRequest` model and answering N ids;

and prints the ratios. `--complete` also waits for every item to end and reports how long
(and pages/s). `--modes chunked,per-job` runs each database twice: as it runs now (a batch
of the scrape adapter as chunk workflows, issue 14 part 2) and as before (one workflow per
item: the adapter's `batchable` turned off in that process), with the ratio of the two.

    python benchmarks/accept_bench.py [--items 1000] [--backends sqlite,postgres]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--complete]
        [--modes chunked,per-job] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import fresh_pg_database, static_site

ENDED = ("succeeded", "failed", "cancelled")


def _bare_insert(database_url: str, items: int) -> float:
    """One transaction, one multi-row INSERT (per 500 rows) of `items` job-shaped rows into
    a scratch table: the best of three."""
    import sqlalchemy as sa

    from portwright.store import create_engine

    engine = create_engine(database_url)
    meta = sa.MetaData()
    table = sa.Table(
        f"bench_bare_{secrets.token_hex(3)}",
        meta,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("adapter", sa.String(64)),
        sa.Column("state", sa.String(64)),
        sa.Column("status", sa.String(16)),
        sa.Column("input", sa.JSON),
        sa.Column("created_at", sa.Float),
    )
    meta.create_all(engine)
    best = float("inf")
    for _ in range(3):  # the best of three
        rows = [
            {
                "id": f"job_{secrets.token_hex(8)}",
                "tenant_id": "bench",
                "adapter": "scrape",
                "state": "INIT",
                "status": "queued",
                "input": {"url": f"http://127.0.0.1:1/product/{i}", "engine": "http"},
                "created_at": time.time(),
            }
            for i in range(items)
        ]
        start = time.perf_counter()
        with engine.begin() as conn:
            for at in range(0, items, 500):
                conn.execute(table.insert().values(rows[at : at + 500]))
        best = min(best, time.perf_counter() - start)
    meta.drop_all(engine)
    engine.dispose()
    return best


def _bare_route(body: bytes) -> float:
    """A bare FastAPI app parsing the same body into BatchRequest, on the same uvicorn."""
    import uvicorn
    from fastapi import FastAPI

    from portwright.cli._stack import _free_port
    from portwright.client._models import BatchRequest

    app = FastAPI()

    async def batch(request: BatchRequest) -> dict[str, Any]:
        return {"jobs": [{"id": f"job_{i}", "url": r.url} for i, r in enumerate(request.items)]}

    batch.__annotations__["request"] = BatchRequest  # a real class, not the postponed name
    app.post("/v1/batch", status_code=202)(batch)

    port = _free_port("127.0.0.1")
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with httpx.Client(timeout=600) as client:
            url = f"http://127.0.0.1:{port}/v1/batch"
            client.post(url, content=body, headers={"content-type": "application/json"})
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                response = client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
                best = min(best, time.perf_counter() - start)
                assert response.status_code == 202, response.text
            return best
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_one(
    backend: str, items: int, database_url: str, complete: bool, mode: str = "chunked"
) -> dict[str, Any]:
    from dbos import DBOS
    from pydantic import SecretStr

    from portwright.adapters.scrape import ScrapeAdapter
    from portwright.orchestrator._chunks import CHUNK_NOTE

    if mode == "per-job":  # the path before chunks: a workflow per item
        ScrapeAdapter.batchable = False

    from portwright.cli._stack import start_stack
    from portwright.gateway.auth import issue_key
    from portwright.sandbox import SandboxWorld
    from portwright.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="accept-bench-"))
    if backend != "postgres":
        database_url = f"sqlite:///{tmp / 'app.sqlite'}"
    specs = static_site()
    settings = Settings(
        data_dir=tmp / "data",
        database_url=database_url,
        worker_id=f"accept-{secrets.token_hex(3)}",
        log_json=False,
        log_level="WARNING",
        master_key=SecretStr("bench-master-key-" + "x" * 32),
        rate_limit_default="10000000/minute",
        rate_limit_write="10000000/minute",
        api_key_cache_s=5.0,
    )
    from portwright.observability import configure_logging

    configure_logging(settings)  # as `portwright up` does (unconfigured, every debug line prints)
    result: dict[str, Any] = {"backend": backend, "items": items, "mode": mode}
    world = SandboxWorld(specs, seed=14).__enter__()  # the process exits when measured
    stack = start_stack(settings, world=world)
    key = issue_key(stack.runtime.store, tenant="bench", plan="enterprise").key
    site = world.url("scrape-static")
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=3600) as api:
        warm = {"items": [{"url": f"{site}/product/{i + 1}"} for i in range(3)]}
        reply = api.post("/v1/batch", json=warm)
        assert reply.status_code == 202, reply.text
        body = json.dumps(
            {
                "items": [
                    {"url": f"{site}/product/{(i % 1000) + 1}", "engine": "http"}
                    for i in range(items)
                ]
            }
        ).encode()
        # the baselines first, while the stack is idle (the batch's items, once running,
        # would hold SQLite's write lock against the bare INSERT)
        result["bare_insert_s"] = _bare_insert(database_url, items)
        result["bare_route_s"] = _bare_route(body)
        start = time.perf_counter()
        reply = api.post("/v1/batch", content=body)
        accepted = time.perf_counter() - start
        assert reply.status_code == 202, reply.text
        jobs = reply.json()["jobs"]
        assert len(jobs) == items
        result["accept_s"] = accepted
        # the workflows that run the items: their chunks' (see `_chunks`) or their own
        records = stack.runtime.store.jobs.get_many([j["id"] for j in jobs])
        ids = sorted({(r.notes or {}).get(CHUNK_NOTE) or r.id for r in records})
        result["workflows"] = len(ids)
        while time.perf_counter() - start < 3600:  # DBOS has every item's workflow
            found = DBOS.list_workflows(workflow_ids=ids, load_input=False, load_output=False)
            if len(found) == len(ids):
                break
            time.sleep(0.02)
        result["enqueued_s"] = time.perf_counter() - start
        if complete:
            deadline = time.monotonic() + 3600
            counts: dict[str, int] = {}
            while time.monotonic() < deadline:
                counts = stack.runtime.store.jobs.counts_by_status()
                if sum(counts.get(s, 0) for s in ENDED) >= items + len(warm["items"]):
                    break
                time.sleep(0.5)
            result["complete_s"] = time.perf_counter() - start
            result["pages_per_s"] = items / result["complete_s"]
            result["statuses"] = counts
    result["ratio_insert"] = result["accept_s"] / result["bare_insert_s"]
    result["ratio_route"] = result["accept_s"] / result["bare_route_s"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--complete", action="store_true", help="also wait for every item")
    parser.add_argument("--modes", default="chunked", help="chunked and/or per-job")
    parser.add_argument("--json", dest="json_out", default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measured = run_one(args.one, args.items, args.database_url, args.complete, args.modes)
        print("RESULT " + json.dumps(measured), flush=True)
        os._exit(0)  # no orderly shutdown of the stack: its measurement is done
    results = []
    runs = [(b, m) for b in args.backends.split(",") for m in args.modes.split(",")]
    for backend, mode in runs:
        with contextlib.ExitStack() as stack:
            database_url = ""
            if backend == "postgres":
                database_url = stack.enter_context(fresh_pg_database(args.postgres, "pw_accept"))
            cmd = [sys.executable, __file__, "--one", backend, "--items", str(args.items)]
            cmd += ["--database-url", database_url] + (["--complete"] if args.complete else [])
            cmd += ["--modes", mode]
            done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if not lines:
            sys.stderr.write(done.stderr[-4000:])
            return 1
        r = json.loads(lines[-1].removeprefix("RESULT "))
        results.append(r)
        line = (
            f"  {r['backend']:<9} accepted {r['accept_s'] * 1000:9.1f} ms | bare multi-row "
            f"INSERT {r['bare_insert_s'] * 1000:7.1f} ms (x{r['ratio_insert']:.1f}) | bare "
            f"FastAPI parse {r['bare_route_s'] * 1000:7.1f} ms (x{r['ratio_route']:.1f})"
        )
        line += f" | every workflow enqueued {r['enqueued_s'] * 1000:.0f} ms"
        if "complete_s" in r:
            line += f" | all ended {r['complete_s']:.1f} s ({r['pages_per_s']:.1f} pages/s)"
            line += f" {r['statuses']}"
            before = [o for o in results if o["backend"] == backend and o["mode"] == "per-job"]
            if mode == "chunked" and before and "complete_s" in before[-1]:
                line += f" | x{before[-1]['complete_s'] / r['complete_s']:.1f} per-job"
        print(
            f"POST /v1/batch of {args.items} static URLs (engine http), {mode}, "
            f"{r['workflows']} workflows: {line.strip()}"
        )
        sys.stdout.flush()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
