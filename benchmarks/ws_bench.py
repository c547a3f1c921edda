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

`--drivers` measures scenario 5's shape instead: N drivers d0…d(N-1), each with its own
socket, and signed webhooks at `--rate` per second for `--seconds` (open loop, 64 client
connections), each order assigned by dispatch to one driver (least loaded first: one push
per order, on that driver's socket). Per order: webhook accepted (202 received) → the push
received, and sent → received; the ack latency; pushes received against orders sent. The
bare app assigns each order to the next connected driver in turn.

`--gateways 2` (with `--drivers`, on PostgreSQL: `--postgres URL` makes a fresh database):
two gateway processes, each on its own port with its own realtime hub, inbox processor and
relay (PostgreSQL NOTIFY wakes each hub when another process writes the outbox). Driver i
connects to gateway i % 2, webhook n is posted to gateway n % 2, so half the pushes cross
from one process to the other through the database. Memory per connection is both
processes' growth over N. The baseline is the bare app on one process with all N.

Loopback only, every loop bounded (N connections, the webhooks, 60 s wait for the
pushes). The client runs in this process, beside the server on the same cores.

    python benchmarks/ws_bench.py [--connections 1000] [--orders 20] [--rate 2]
                                  [--database-url postgresql+psycopg://…]
    python benchmarks/ws_bench.py --drivers --connections 5000 --rate 200 --seconds 30
                                  [--gateways 2 --postgres postgresql://postgres@127.0.0.1:5432]
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

from benchlib import fresh_pg_database
from delivery_bench import _prepare, _Server, _settings, _signed_order
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


def _prepare_drivers(data_dir: str, database_url: str | None, drivers: int) -> str:
    """The tenant, its API key and `drivers` available drivers d0…d(N-1)."""
    from portwright.apps.dispatch import DispatchRepository
    from portwright.store import Store

    key = _prepare(data_dir, database_url)  # also makes d1, which is one of them
    store = Store.open(_settings(data_dir, database_url).app_database_url)
    repo = DispatchRepository(store.engine)
    with store.engine.begin() as conn:
        tenant_id = _tenant_of(conn)
        for n in range(drivers):
            repo.upsert_driver(conn, tenant_id, f"d{n}", name=f"d{n}", available=True)
    store.close()
    return key


async def _connect(urls: list[str], drivers: int) -> tuple[list[Any], float]:
    """Driver i's socket to `urls[i % len(urls)]`, in waves of 100; each has its snapshot."""
    from websockets.asyncio.client import connect

    sockets: list[Any] = []
    started = time.perf_counter()
    for first in range(0, drivers, 100):
        # No client keepalive pings: on a starved machine a late pong would close the
        # socket (1011) and lose its pushes; the benchmark bounds every wait itself.
        wave = [connect(urls[i % len(urls)].format(driver=f"d{i}"), max_queue=None,
                        max_size=None, open_timeout=120, ping_interval=None)
                for i in range(first, min(drivers, first + 100))]  # fmt: skip
        opened = await asyncio.gather(*wave)
        for ws in opened:
            assert json.loads(await ws.recv())["type"] == "snapshot"
        sockets.extend(opened)
    return sockets, time.perf_counter() - started


async def measure_drivers(
    servers: list[_Server], key: str, drivers: int, rate: float, seconds: float
) -> Any:
    """N drivers, one socket each; webhooks at `rate`/s, each order pushed to one driver."""
    urls = [
        s.url.replace("http://", "ws://") + f"/v1/drivers/{{driver}}/ws?access_token={key}"
        for s in servers
    ]
    before = [_rss_kib(s.proc.pid) for s in servers]
    sockets, connect_s = await _connect(urls, drivers)
    after = [_rss_kib(s.proc.pid) for s in servers]

    count = int(rate * seconds)
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    pushed: dict[str, float] = {}
    pushes = 0
    statuses: dict[int, int] = {}
    ack_latency: list[float] = []
    done = asyncio.Event()

    async def listen(ws: Any) -> None:
        nonlocal pushes
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "order.assigned":
                pushes += 1
                pushed.setdefault(message["data"]["order_id"], now)
                if len(pushed) >= count:
                    done.set()

    listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
    pools: list[asyncio.Queue[Connection]] = []
    for server in servers:
        host, port, _ = _host_port(server.url)
        pool: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(64 // len(servers)):
            pool.put_nowait(Connection(host, port))
        pools.append(pool)
    begin = time.perf_counter()

    async def one(n: int, due: float) -> None:
        order_id, body, headers = _signed_order(n, f"d{drivers}g{len(servers)}")
        pool = pools[n % len(pools)]
        conn = await pool.get()
        try:
            sent[order_id] = begin + due
            status = await conn.request("POST", "/v1/hooks/shop-beta", headers, body)
        except (OSError, asyncio.IncompleteReadError):  # counted as not accepted (status 0)
            status = 0
            conn = Connection(conn.host, conn.port)  # a fresh one for the next webhook
        finally:
            pool.put_nowait(conn)
        acked[order_id] = now = time.perf_counter()
        ack_latency.append(now - (begin + due))
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for n in range(count):
        due = n / rate
        delay = begin + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=60)
    for task in listeners:
        task.cancel()
    for pool in pools:
        while not pool.empty():
            await pool.get_nowait().close()
    for ws in sockets:
        with contextlib.suppress(Exception):
            await ws.close()
    from_ack = [max(0.0, pushed[o] - acked[o]) for o in pushed if o in acked]
    from_send = [pushed[o] - sent[o] for o in pushed if o in sent]
    return {
        "drivers": drivers,
        "gateways": len(servers),
        "connect_s": connect_s,
        "rss_before_mib": sum(before) / 1024,
        "rss_connected_mib": sum(after) / 1024,
        "kib_per_connection": (sum(after) - sum(before)) / drivers,
        "webhooks": count,
        "achieved_rps": count / elapsed,
        "non_202": sum(v for s, v in statuses.items() if s != 202),
        "orders_pushed": len(pushed),
        "pushes_received": pushes,
        "ack_p95_ms": _pct(ack_latency, 0.95),
        "push_p50_ms": _pct(from_ack, 0.50) if from_ack else None,
        "push_p99_ms": _pct(from_ack, 0.99) if from_ack else None,
        "send_to_push_p50_ms": _pct(from_send, 0.50) if from_send else None,
        "send_to_push_p99_ms": _pct(from_send, 0.99) if from_send else None,
    }


def _tenant_of(conn: Any) -> str:
    import sqlalchemy as sa

    row = conn.execute(sa.text("SELECT tenant_id FROM dispatch_drivers LIMIT 1")).first()
    return str(row[0])


def drivers_main(args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        url = args.database_url
        if args.postgres:
            base = stack.enter_context(fresh_pg_database(args.postgres, "pw_ws_bench"))
            url = base.replace("postgresql://", "postgresql+psycopg://", 1)
        if args.gateways > 1 and url is None:
            raise SystemExit("--gateways 2 needs PostgreSQL: --postgres URL or --database-url")
        data_dir = tempfile.mkdtemp(prefix="pw-ws-bench-")
        key = _prepare_drivers(data_dir, url, args.connections)
        results: dict[str, Any] = {
            "cpus": os.cpu_count(),
            "load_avg_before": os.getloadavg(),
            "database": "postgresql" if url else "sqlite",
            "rate": args.rate,
            "seconds": args.seconds,
        }
        with _Server("starlette", data_dir, url) as bare:
            results["baseline_starlette_ws"] = asyncio.run(
                measure_drivers([bare], key, args.connections, args.rate, args.seconds)
            )
        results["load_avg_between"] = os.getloadavg()
        with contextlib.ExitStack() as gateways:
            servers = [
                gateways.enter_context(_Server("gateway", data_dir, url))
                for _ in range(args.gateways)
            ]
            results["portwright"] = asyncio.run(
                measure_drivers(servers, key, args.connections, args.rate, args.seconds)
            )
        results["load_avg_after"] = os.getloadavg()
    base, pw = results["baseline_starlette_ws"], results["portwright"]
    results["ratio"] = {
        "kib_per_connection_over_baseline": pw["kib_per_connection"]
        / max(base["kib_per_connection"], 1e-3),
        "send_to_push_p99_over_baseline": (pw["send_to_push_p99_ms"] or 0)
        / max(base["send_to_push_p99_ms"] or 0, 1e-3),
    }
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=20, help="webhooks, each pushed to all")
    parser.add_argument("--rate", type=float, default=2.0, help="webhooks per second")
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--drivers", action="store_true", help="N drivers, one socket each, one push per order"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="with --drivers")
    parser.add_argument("--gateways", type=int, default=1, help="with --drivers: 1 or 2")
    parser.add_argument("--postgres", default=None, help="server URL: a fresh database on it")
    args = parser.parse_args()
    if not 1 <= args.connections <= 10_000 or not 1 <= args.orders <= 1_000:
        parser.error("--connections 1..10000, --orders 1..1000")
    if not 1 <= args.gateways <= 4 or not 0 < args.rate * args.seconds <= 100_000:
        parser.error("--gateways 1..4, --rate times --seconds 1..100000")
    if args.drivers:
        results = drivers_main(args)
        print(json.dumps(results, indent=2, default=lambda v: round(v, 2)))
        return 0
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
