"""Scenario 5 propagation: webhook accepted → the driver's WebSocket push, on loopback.

Signed `order.created` webhooks (Standard Webhooks, shop-beta's shape) go to
`POST /v1/hooks/shop-beta` at a fixed rate (open loop); each is verified,
deduplicated, persisted, acknowledged 202, then processed: normalized, assigned
to the tenant's driver (dispatch), written to the outbox, and pushed by the
realtime hub to the driver's WebSocket (`/v1/drivers/d1/ws`). Measured per
order: ack latency (from the scheduled send), and propagation from the ack
(and from the send) to the push's arrival.

The baseline, measured in the same run on the same uvicorn settings: a bare
Starlette app whose webhook route parses the body and hands it straight to the
connected WebSocket (no verification, no database) — the transport's floor.
The figures that matter are the ratios and the absolute p99 against the target
(internal propagation p99 < 500 ms, ack p95 < 100 ms).

    python benchmarks/delivery_bench.py [--rate 200] [--seconds 30] [--burst 1000]
                                        [--burst-window 1] [--database-url postgresql+psycopg://…]

`--burst N` adds a second run against each server: N webhooks sent at once (64
connections), measured the same way: from the instant all N are handed to the
client, so the last ones wait for a free connection and the server's throughput
sets the figure (one Python process clears ~3,000/s at best, so N at once cannot
be acknowledged within 100 ms at p95 by any server of this kind here).
`--burst-window W` adds a third: the N spread evenly over W seconds (a shop's
flash sale: 1,000 webhooks within a second).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_bench import BEARER_SECRET, Connection, Server, _free_port, _host_port, _pct
from gateway_bench import _settings as gateway_settings

SECRET = BEARER_SECRET
RUN = f"{os.getpid():x}"


def _settings(data_dir: str, database_url: str | None) -> Any:
    """The gateway benchmark's settings, with shop-beta's orders dispatched for tenant bench."""
    from pydantic import SecretStr

    from portwright.settings import WebhookSource

    source = WebhookSource(
        scheme="standard", secrets=[SecretStr(SECRET)], handler="shop-order", tenant="bench"
    )
    base = gateway_settings(data_dir, database_url)
    return base.model_copy(update={"webhook_sources": {"shop-beta": source}})


# -- servers (subprocesses running `<this file> serve MODE PORT DATA_DIR [DATABASE_URL]`) --


class _Server(Server):
    """One server process, or with `processes` > 1 several gateway processes sharing one port
    (SO_REUSEPORT: the kernel spreads connections over them), each with its own inbox
    processor, relay and realtime hub, as a scaled-out deployment runs them."""

    def __init__(
        self, mode: str, data_dir: str, database_url: str | None, processes: int = 1
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, __file__, "serve", mode, str(self.port), data_dir]
        self.args += [database_url] if database_url else []
        self.processes = processes
        self.ready_dir = Path(tempfile.mkdtemp(prefix="pw-bench-ready-"))
        self.proc = self._spawn()
        self.others: list[subprocess.Popen[bytes]] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PW_BENCH_READY_DIR": str(self.ready_dir)}
        if self.processes > 1:
            env["PW_BENCH_REUSE_PORT"] = "1"
        return subprocess.Popen(self.args, env=env)

    def __enter__(self) -> _Server:
        super().__enter__()  # the first answers: its migrations ran, the others can start
        self.others = [self._spawn() for _ in range(self.processes - 1)]
        deadline = time.monotonic() + 300
        while len(list(self.ready_dir.iterdir())) < self.processes:
            if time.monotonic() > deadline:
                raise RuntimeError("gateway processes did not start")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        for proc in self.others:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        super().stop()
        for proc in self.others:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.ready_dir, ignore_errors=True)


def serve(mode: str, port: int, data_dir: str, database_url: str | None) -> None:
    import socket
    import threading

    import uvicorn

    settings = _settings(data_dir, database_url)
    if mode == "starlette":
        app = _bare_app()
    else:
        from portwright.adapters import AdapterRegistry
        from portwright.gateway import create_app
        from portwright.orchestrator import JobService, Runtime

        runtime = Runtime(settings, AdapterRegistry(), run_workers=False).start()
        app = create_app(JobService(runtime), settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    sockets = None
    if os.environ.get("PW_BENCH_REUSE_PORT"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sockets = [sock]

    def announce() -> None:  # tell the parent this process serves (see _Server.__enter__)
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        ready = os.environ.get("PW_BENCH_READY_DIR")
        if ready and server.started:
            Path(ready, str(os.getpid())).touch()

    threading.Thread(target=announce, daemon=True).start()
    # uvicorn re-raises the parent's SIGINT once it has shut down: the stop asked for, not
    # an error (it printed a traceback after every --drivers run)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)


def _bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    # Each order goes to one connected driver, in turn (every socket of that driver gets
    # it): with only d1 connected (this benchmark, ws_bench's fan-out) that is every socket.
    listeners: dict[str, set[asyncio.Queue[str]]] = {}
    turn = 0

    async def hook(request: Request) -> JSONResponse:
        nonlocal turn
        order = json.loads(await request.body())["data"]
        message = json.dumps({"type": "order.assigned", "data": {"order_id": order["id"]}})
        drivers = list(listeners)
        if drivers:
            turn = (turn + 1) % len(drivers)
            for queue in listeners[drivers[turn]]:
                queue.put_nowait(message)
        return JSONResponse({"duplicate": False}, status_code=202)

    async def socket(ws: WebSocket) -> None:
        driver = ws.path_params["driver_id"]
        await ws.accept()
        queue: asyncio.Queue[str] = asyncio.Queue()
        listeners.setdefault(driver, set()).add(queue)
        await ws.send_text(json.dumps({"type": "snapshot", "assignments": []}))
        try:
            while True:
                await ws.send_text(await queue.get())
        except WebSocketDisconnect:
            pass
        finally:
            listeners[driver].discard(queue)
            if not listeners[driver]:
                del listeners[driver]

    async def index(_: Request) -> JSONResponse:
        return JSONResponse({})

    routes = [
        Route("/", index),
        Route("/v1/hooks/shop-beta", hook, methods=["POST"]),
        WebSocketRoute("/v1/drivers/{driver_id}/ws", socket),
    ]
    return Starlette(routes=routes)


def _prepare(data_dir: str, database_url: str | None) -> str:
    """The tenant, its API key and its one driver (everything is assigned to d1)."""
    from portwright.apps.dispatch import DispatchRepository
    from portwright.gateway import issue_key
    from portwright.store import Store

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    store = Store.open(_settings(data_dir, database_url).app_database_url)
    issued = issue_key(store, tenant="bench")
    with store.engine.begin() as conn:
        DispatchRepository(store.engine).upsert_driver(
            conn, issued.record.tenant_id, "d1", name="d1", available=True
        )
    store.close()
    return issued.key


# -- load ------------------------------------------------------------------------------


def _signed_order(seq: int, run: str) -> tuple[str, bytes, dict[str, str]]:
    order_id = f"ord_{RUN}{run}_{seq}"
    body = json.dumps(
        {
            "type": "order.created",
            "timestamp": "",
            "data": {
                "id": order_id,
                "number": seq,
                "customer": "Ada",
                "address": "1 Quay St",
                "total_cents": 1150,
                "currency": "EUR",
            },
        }
    ).encode()
    msg_id = f"msg_{RUN}{run}_{seq}"
    stamp = str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    return order_id, body, headers


async def measure(
    base_url: str, key: str, rate: float, seconds: float, burst: int = 0, window: float = 0.0
) -> dict[str, Any]:
    """Send `rate * seconds` webhooks at a fixed rate, or `burst` of them all at once (or
    spread evenly over `window` seconds)."""
    from websockets.asyncio.client import connect

    host, port, _ = _host_port(base_url)
    ws_url = base_url.replace("http://", "ws://") + f"/v1/drivers/d1/ws?access_token={key}"
    count = burst or int(rate * seconds)
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    pushed: dict[str, float] = {}
    statuses: dict[int, int] = {}
    ack_latency: list[float] = []
    done = asyncio.Event()

    # max_size=None: the snapshot of a driver holding every order of the run is megabytes
    async with connect(ws_url, max_queue=None, max_size=None) as ws:
        # The driver is connected and has its snapshot before the clock starts.
        assert json.loads(await ws.recv())["type"] == "snapshot"

        async def receive() -> None:
            async for raw in ws:
                now = time.perf_counter()
                message = json.loads(raw)
                if message.get("type") == "order.assigned":
                    pushed.setdefault(message["data"]["order_id"], now)
                    if len(pushed) >= count:
                        done.set()

        receiver = asyncio.create_task(receive())
        free: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(64):
            free.put_nowait(Connection(host, port))
        begin = time.perf_counter()

        async def one(due: float, order_id: str, body: bytes, headers: dict[str, str]) -> None:
            conn = await free.get()
            try:
                sent[order_id] = begin + due
                status = await conn.request("POST", "/v1/hooks/shop-beta", headers, body)
            finally:
                free.put_nowait(conn)
            acked[order_id] = now = time.perf_counter()
            ack_latency.append(now - (begin + due))
            statuses[status] = statuses.get(status, 0) + 1

        tasks = []
        for n in range(count):
            order_id, body, headers = _signed_order(n, ("w" if window else "b") if burst else "s")
            due = (n * window / burst if window else 0.0) if burst else n / rate
            delay = begin + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, order_id, body, headers)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=60)
        receiver.cancel()
        while not free.empty():
            await free.get_nowait().close()
    from_ack = [max(0.0, pushed[o] - acked[o]) for o in pushed if o in acked]
    from_send = [pushed[o] - sent[o] for o in pushed if o in sent]
    return {
        "webhooks": count,
        "achieved_rps": count / elapsed,
        "non_202": sum(n for s, n in statuses.items() if s != 202),
        "pushes_received": len(pushed),
        "ack_p50_ms": _pct(ack_latency, 0.50),
        "ack_p95_ms": _pct(ack_latency, 0.95),
        "ack_p99_ms": _pct(ack_latency, 0.99),
        "propagation_p50_ms": _pct(from_ack, 0.50) if from_ack else None,
        "propagation_p99_ms": _pct(from_ack, 0.99) if from_ack else None,
        "send_to_push_p50_ms": _pct(from_send, 0.50) if from_send else None,
        "send_to_push_p99_ms": _pct(from_send, 0.99) if from_send else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--burst", type=int, default=0, help="also send this many at once, after the steady run"
    )
    parser.add_argument(
        "--burst-window",
        type=float,
        default=0.0,
        help="with --burst: also send the burst spread evenly over this many seconds",
    )
    parser.add_argument(
        "--gateways",
        type=int,
        default=1,
        help="gateway processes sharing the port (scale-out; PostgreSQL wakes them by NOTIFY)",
    )
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="pw-delivery-bench-")
    key = _prepare(data_dir, args.database_url)
    results: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "database": args.database_url or "sqlite",
        "rate": args.rate,
        "seconds": args.seconds,
        "gateways": args.gateways,
    }
    for mode, steady, prefix in (
        ("starlette", "baseline_starlette_ws", "baseline"),
        ("gateway", "portwright", "portwright"),
    ):
        processes = args.gateways if mode == "gateway" else 1
        with _Server(mode, data_dir, args.database_url, processes) as server:
            results[steady] = asyncio.run(measure(server.url, key, args.rate, args.seconds))
            if args.burst:
                burst = measure(server.url, key, 0, 0, burst=args.burst)
                results[f"{prefix}_burst"] = asyncio.run(burst)
            if args.burst and args.burst_window:
                spread = measure(server.url, key, 0, 0, burst=args.burst, window=args.burst_window)
                results[f"{prefix}_burst_spread"] = asyncio.run(spread)
    base, pw = results["baseline_starlette_ws"], results["portwright"]
    if pw["propagation_p50_ms"] is not None:
        results["ratio"] = {
            "propagation_p50_over_baseline": pw["send_to_push_p50_ms"]
            / max(base["send_to_push_p50_ms"], 1e-3),
            "propagation_p99_over_baseline": pw["send_to_push_p99_ms"]
            / max(base["send_to_push_p99_ms"], 1e-3),
            "ack_p95_over_baseline": pw["ack_p95_ms"] / max(base["ack_p95_ms"], 1e-3),
        }
    print(json.dumps(results, indent=2, default=lambda v: round(v, 2)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        url = sys.argv[5] if len(sys.argv) > 5 else None
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], url)
    else:
        sys.exit(main())
