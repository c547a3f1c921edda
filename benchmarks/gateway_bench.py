"""Gateway benchmarks, on loopback, with the baseline measured in the same run.

1. Overhead: GET /v1/jobs/{id} through the full gateway (auth, rate limits,
   idempotency, validation, tenant scoping) vs a bare Starlette app serving the
   same store read on the same uvicorn settings: requests/s, and p50/p99 added.
2. Webhook ingest: POST /v1/hooks/shop-beta (Standard Webhooks, verified,
   deduplicated, persisted) at 200 requests/s for 60 s, then a 1,000-request
   burst: p50/p95/p99 acknowledgement latency.

    python benchmarks/gateway_bench.py [--seconds 8] [--ingest-seconds 60] [--concurrency 32]

Each server runs in its own process (one uvicorn worker); the load generator
is this process. The overhead comparison runs in interleaved rounds so that a
busy machine weighs on both sides alike. SQLite by default;
`--database-url postgresql://…` for Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BEARER_SECRET = "whsec_" + base64.b64encode(b"benchmark-shop-beta-secret-key!!").decode()


def _settings(data_dir: str, database_url: str | None) -> Any:
    from pydantic import SecretStr

    from portwright.settings import Settings, WebhookSource

    return Settings(
        data_dir=Path(data_dir),
        database_url=database_url,
        master_key=SecretStr("benchmark-master-key-" + "z" * 32),
        rate_limit_default="10000000/minute",
        rate_limit_write="10000000/minute",
        rate_limit_sensitive="10000000/minute",
        rate_limit_auth_failures="10000000/minute",
        api_key_cache_s=5.0,
        webhook_sources={
            "shop-beta": WebhookSource(scheme="standard", secrets=[SecretStr(BEARER_SECRET)])
        },
        log_json=False,
        log_level="WARNING",
    )


# -- servers (run in subprocesses) -------------------------------------------------------


def serve(mode: str, port: int, data_dir: str, database_url: str | None, tenant_id: str) -> None:
    import uvicorn

    from portwright.adapters import AdapterRegistry
    from portwright.testing import EchoAdapter

    settings = _settings(data_dir, database_url)
    if mode == "starlette":
        app = _bare_app(settings, tenant_id)
    else:
        from portwright.gateway import create_app
        from portwright.orchestrator import JobService, Runtime

        registry = AdapterRegistry()
        registry.register(EchoAdapter)
        runtime = Runtime(settings, registry, run_workers=False).start()
        app = create_app(JobService(runtime), settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _bare_app(settings: Any, tenant_id: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from portwright.client.models import Job
    from portwright.store import JobNotFoundError, Store

    store = Store.open(settings.app_database_url)

    async def get_job(request: Request) -> JSONResponse:
        try:
            row = await asyncio.to_thread(
                store.jobs.get, request.path_params["job_id"], tenant_id=tenant_id
            )
        except JobNotFoundError:
            return JSONResponse({"code": "job_not_found"}, status_code=404)
        job = Job.model_validate(row, from_attributes=True)
        return JSONResponse(job.model_dump(mode="json"))

    return Starlette(routes=[Route("/v1/jobs/{job_id}", get_job)])


# -- load generation ---------------------------------------------------------------------


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


class Connection:
    """A minimal HTTP/1.1 keep-alive connection (cheap on the client side, no pool)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"content-length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def _host_port(url: str) -> tuple[str, int, str]:
    parsed = httpx.URL(url)
    return parsed.host, parsed.port or 80, parsed.raw_path.decode()


async def closed_loop(
    url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, Any]:
    """`concurrency` connections sending back-to-back GETs for `seconds`."""
    host, port, path = _host_port(url)
    conns = [Connection(host, port) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    for conn in conns:  # warm-up, one request per connection
        await conn.request("GET", path, headers)
    deadline = time.perf_counter() + seconds

    async def worker(conn: Connection) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            status = await conn.request("GET", path, headers)
            latencies.append(time.perf_counter() - start)
            errors += status != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    return {"latencies": latencies, "elapsed": elapsed, "errors": errors}


def _merge(rounds: list[dict[str, Any]]) -> dict[str, float]:
    latencies = [x for r in rounds for x in r["latencies"]]
    elapsed = sum(r["elapsed"] for r in rounds)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": _pct(latencies, 0.50),
        "p99_ms": _pct(latencies, 0.99),
        "requests": len(latencies),
        "errors": sum(r["errors"] for r in rounds),
    }


def _signed_event(seq: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "order.updated", "data": {"id": f"ord_{seq}", "seq": seq}}).encode()
    msg_id = f"msg_bench_{secrets.token_hex(6)}_{seq}"
    stamp = str(int(time.time()))
    key = base64.b64decode(BEARER_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    return body, headers


async def _send_all(
    url: str, events: list[tuple[float, bytes, dict[str, str]]], connections: int
) -> dict[str, float]:
    """Send each event at its scheduled time on a pool of keep-alive connections; latency is
    measured from the scheduled time (open loop: waiting for a free connection counts)."""
    host, port, path = _host_port(url)
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(Connection(host, port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    begin = time.perf_counter()

    async def one(due: float, body: bytes, headers: dict[str, str]) -> None:
        conn = await free.get()
        try:
            status = await conn.request("POST", path, headers, body)
        finally:
            free.put_nowait(conn)
        latencies.append(time.perf_counter() - (begin + due))
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for due, body, headers in events:
        delay = begin + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, body, headers)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    while not free.empty():
        await free.get_nowait().close()
    return _ingest_summary(latencies, statuses, elapsed)


async def open_loop(url: str, rate: float, seconds: float) -> dict[str, float]:
    """Signed webhooks at a fixed rate for `seconds`."""
    events = [(n / rate, *_signed_event(n)) for n in range(int(rate * seconds))]
    return await _send_all(url, events, connections=64)


async def burst(url: str, count: int) -> dict[str, float]:
    """`count` signed webhooks due at the same instant."""
    events = [(0.0, *_signed_event(1_000_000 + n)) for n in range(count)]
    return await _send_all(url, events, connections=256)


def _ingest_summary(
    latencies: list[float], statuses: dict[int, int], elapsed: float
) -> dict[str, float]:
    return {
        "requests": len(latencies),
        "achieved_rps": len(latencies) / elapsed,
        "p50_ms": _pct(latencies, 0.50),
        "p95_ms": _pct(latencies, 0.95),
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": max(latencies) * 1000.0,
        "non_202": sum(n for s, n in statuses.items() if s != 202),
    }


# -- orchestration -----------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, mode: str, data_dir: str, database_url: str | None, tenant_id: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, __file__, "serve", mode, str(self.port), data_dir, tenant_id]
        if database_url:
            args.append(database_url)
        self.proc = subprocess.Popen(args)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
            else:
                return self
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _prepare(data_dir: str, database_url: str | None) -> tuple[str, str, str]:
    from portwright.gateway import issue_key
    from portwright.store import Store

    settings = _settings(data_dir, database_url)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.app_database_url)
    issued = issue_key(store, tenant="bench")
    job, _ = store.jobs.insert(
        job_id=f"job_bench_{secrets.token_hex(4)}",
        tenant_id=issued.record.tenant_id,
        adapter="echo",
        adapter_version="1",
        portal="echo",
        state="INIT",
        status="queued",
        input={"url": "http://127.0.0.1:9/", "key": "bench"},
        lock_key=None,
        priority=0,
        actor="bench",
    )
    store.close()
    return issued.key, issued.record.tenant_id, job.id


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=16.0, help="per side, over all rounds")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved overhead rounds")
    parser.add_argument("--ingest-seconds", type=float, default=60.0)
    parser.add_argument("--ingest-rate", type=float, default=200.0)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="pw-bench-")
    key, tenant_id, job_id = _prepare(data_dir, args.database_url)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "database": args.database_url or "sqlite"}
    path = f"/v1/jobs/{job_id}"
    auth = {"authorization": f"Bearer {key}"}
    with (
        Server("starlette", data_dir, args.database_url, tenant_id) as bare,
        Server("gateway", data_dir, args.database_url, tenant_id) as gateway,
    ):
        # Interleaved rounds, alternating which goes first, so a noisy neighbour on the
        # machine weighs on both sides alike.
        rounds: dict[str, list[dict[str, Any]]] = {"starlette": [], "gateway": []}
        slice_s = args.seconds / args.rounds
        for n in range(args.rounds):
            order = [("starlette", bare.url, {}), ("gateway", gateway.url, auth)]
            for mode, url, headers in order[:: 1 if n % 2 == 0 else -1]:
                measured = asyncio.run(closed_loop(url + path, headers, slice_s, args.concurrency))
                rounds[mode].append(measured)
        for mode, measured in rounds.items():
            results[mode] = _merge(measured)
        bare.stop()
        hooks = gateway.url + "/v1/hooks/shop-beta"
        results["ingest_sustained"] = asyncio.run(
            open_loop(hooks, args.ingest_rate, args.ingest_seconds)
        )
        results["ingest_burst"] = asyncio.run(burst(hooks, args.burst))
    base, gw = results["starlette"], results["gateway"]
    results["ratio"] = {
        "rps_gateway_over_starlette": gw["rps"] / base["rps"],
        "added_p50_ms": gw["p50_ms"] - base["p50_ms"],
        "added_p99_ms": gw["p99_ms"] - base["p99_ms"],
    }
    print(json.dumps(results, indent=2, default=lambda v: round(v, 2)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        mode, port, data_dir, tenant = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        serve(mode, port, data_dir, sys.argv[6] if len(sys.argv) > 6 else None, tenant)
    else:
        sys.exit(main())
