"""Many driver WebSockets on one gateway process: memory per connection and push latency.

N WebSockets are opened to `/v1/drivers/d1/ws` on one `portwright` gateway process (the
delivery benchmark's server: runtime without workers, the gateway's realtime hub, inbox
processor and relay) and, as the baseline in the same run, on a bare Starlette app holding
WebSockets on the same uvicorn settings. Measured on each server:

- the server process's resident memory before the first connection and once all N have
  their snapshot: KiB per connection (the ratio to the baseline is the figure to read);
- then `--orders` signed webhooks at `--rate` per second: each order is assigned to d1 and
  pushed to **every** one of the N sockets (all N are that driver's connections: a fan-out
  of N messages per order, harsher than N drivers with an order each). Per order: webhook
  sent → the push on the first and on the last socket; per message: sent → received.

Loopback only, every loop bounded (N connections, `--orders` webhooks, 60 s wait for the
pushes). The client runs in this process, beside the server on the same cores.

    python benchmarks/ws_bench.py [--connections 1000] [--orders 20] [--rate 2]
                                  [--database-url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from delivery_bench import _prepare, _Server, _signed_order
from gateway_bench import Connection, _host_port, _pct


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def measure(server: _Server, key: str, connections: int, orders: int, rate: float) -> Any:
    from websockets.asyncio.client import ClientConnection, connect

    base = server.url
    ws_url = base.replace("http://", "ws://") + f"/v1/drivers/d1/ws?access_token={key}"
    await asyncio.sleep(0)  # the server answered (its __enter__): memory has settled enough
    before = _rss_kib(server.proc.pid)
    sockets: list[ClientConnection] = []
    started = time.perf_counter()
    # Connect in waves of 100 so the listen backlog is never the limit.
    for first in range(0, connections, 100):
        wave = [connect(ws_url, max_queue=None, max_size=None, open_timeout=60)
                for _ in range(first, min(connections, first + 100))]  # fmt: skip
        opened = await asyncio.gather(*wave)
        for ws in opened:
            assert json.loads(await ws.recv())["type"] == "snapshot"
        sockets.extend(opened)
    connect_s = time.perf_counter() - started
    after = _rss_kib(server.proc.pid)

    sent: dict[str, float] = {}
    received: dict[str, list[float]] = {}
    total = orders * connections
    got = 0
    done = asyncio.Event()

    async def listen(ws: ClientConnection) -> None:
        nonlocal got
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "order.assigned":
                received.setdefault(message["data"]["order_id"], []).append(time.perf_counter())
                got += 1
                if got >= total:
                    done.set()

    listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
    host, port, _ = _host_port(base)
    conn = Connection(host, port)
    statuses: dict[int, int] = {}
    begin = time.perf_counter()
    for n in range(orders):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        order_id, body, headers = _signed_order(n, f"c{connections}")
        sent[order_id] = time.perf_counter()
        status = await conn.request("POST", "/v1/hooks/shop-beta", headers, body)
        statuses[status] = statuses.get(status, 0) + 1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=60)
    await conn.close()
    for task in listeners:
        task.cancel()
    for ws in sockets:
        with contextlib.suppress(Exception):
            await ws.close()
    per_message = [t - sent[o] for o, times in received.items() if o in sent for t in times]
    first_push = [min(times) - sent[o] for o, times in received.items() if o in sent]
    last_push = [
        max(times) - sent[o]
        for o, times in received.items()
        if o in sent and len(times) == connections
    ]
    return {
        "connections": connections,
        "connect_s": connect_s,
        "rss_before_mib": before / 1024,
        "rss_connected_mib": after / 1024,
        "kib_per_connection": (after - before) / connections,
        "orders": orders,
        "non_202": sum(v for s, v in statuses.items() if s != 202),
        "pushes_expected": total,
        "pushes_received": got,
        "message_p50_ms": _pct(per_message, 0.50) if per_message else None,
        "message_p99_ms": _pct(per_message, 0.99) if per_message else None,
        "first_socket_p99_ms": _pct(first_push, 0.99) if first_push else None,
        "last_socket_p50_ms": _pct(last_push, 0.50) if last_push else None,
        "last_socket_p99_ms": _pct(last_push, 0.99) if last_push else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=20, help="webhooks, each pushed to all")
    parser.add_argument("--rate", type=float, default=2.0, help="webhooks per second")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if not 1 <= args.connections <= 10_000 or not 1 <= args.orders <= 1_000:
        parser.error("--connections 1..10000, --orders 1..1000")
    data_dir = tempfile.mkdtemp(prefix="pw-ws-bench-")
    key = _prepare(data_dir, args.database_url)
    results: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "load_avg_before": os.getloadavg(),
        "database": args.database_url or "sqlite",
    }
    for mode, name in (("starlette", "baseline_starlette_ws"), ("gateway", "portwright")):
        with _Server(mode, data_dir, args.database_url) as server:
            results[name] = asyncio.run(
                measure(server, key, args.connections, args.orders, args.rate)
            )
    results["load_avg_after"] = os.getloadavg()
    base, pw = results["baseline_starlette_ws"], results["portwright"]
    results["ratio"] = {
        "kib_per_connection_over_baseline": pw["kib_per_connection"]
        / max(base["kib_per_connection"], 1e-3),
        "message_p99_over_baseline": (pw["message_p99_ms"] or 0)
        / max(base["message_p99_ms"] or 0, 1e-3),
    }
    print(json.dumps(results, indent=2, default=lambda v: round(v, 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
