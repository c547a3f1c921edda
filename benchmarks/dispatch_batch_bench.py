"""One dispatch batch against a tenant with thousands of drivers, A/B between two sources.

Scenario 5's gateway applies shop webhooks in batches (`Dispatcher.ingest`: one transaction
per batch, each order to the least loaded driver). This times that transaction alone, in
one process, on a tenant with `--drivers` available drivers already carrying `--orders`
active orders: `--rounds` batches of `--batch` new orders each, through the inbox as the
gateway feeds them. With `--before-src DIR` each round runs the same batch on the code in
DIR (a checkout's `src`) in a child process, back to back, so both see the same machine
load; the figure to read is the per-round ratio.

    python benchmarks/dispatch_batch_bench.py --drivers 5000 --batch 20 --rounds 5 \
        [--postgres postgresql://postgres@127.0.0.1:5432] [--before-src /tmp/before/src]

Loopback only; every loop is bounded by the arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _events(tenant_id: str, first: int, count: int) -> list[Any]:
    from portwright.sandbox.shops import BETA, Order
    from portwright.store import NewInboxEvent

    out = []
    for seq in range(first, first + count):
        order = Order(f"o{seq:06}", seq, "Ada Byron", "12 Quay St", [("PZ", "Pizza", 1, 1150)],
                      "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")  # fmt: skip
        body = BETA.event(7, seq, "created", order).body  # type: ignore[arg-type]
        out.append(
            NewInboxEvent(
                source="shop-beta",
                external_id="beta",
                event_id=f"evt_{seq}",
                checksum=hashlib.sha256(body).hexdigest(),
                payload=body,
                event_type=json.loads(body)["type"],
                tenant_id=tenant_id,
            )
        )
    return out


async def _apply(store: Any, dispatcher: Any, tenant_id: str, first: int, count: int) -> float:
    store.inbox.add_many(_events(tenant_id, first, count))
    claimed = store.inbox.claim(worker="bench", limit=count, lease_s=600)
    claimed.sort(key=lambda e: int(e.event_id.split("_")[1]))
    started = time.perf_counter()
    await asyncio.gather(*(dispatcher.ingest(e) for e in claimed))
    return time.perf_counter() - started


def prepare(url: str, drivers: int, orders: int, batch: int) -> None:
    """A tenant with `drivers` available drivers and `orders` active orders among them."""
    import sqlalchemy as sa

    from portwright.apps.dispatch import Dispatcher
    from portwright.apps.dispatch.tables import dispatch_drivers
    from portwright.store import Store

    store = Store.open(url)
    try:
        tenant = store.tenants.ensure("bench").id
        now = time.time()
        with store.engine.begin() as conn:
            conn.execute(
                dispatch_drivers.insert(),
                [
                    {
                        "tenant_id": tenant,
                        "driver_id": f"d{n:05}",
                        "name": f"driver {n}",
                        "available": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(drivers)
                ],
            )
        dispatcher = Dispatcher(store)

        async def load() -> None:
            for first in range(0, orders, batch * 5):
                await _apply(store, dispatcher, tenant, first, min(batch * 5, orders - first))

        asyncio.run(load())
        with store.engine.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM dispatch_assignments")).scalar()
        assert n == orders, n
    finally:
        store.close()


def one_round(url: str, first: int, batch: int) -> float:
    """Apply one batch of `batch` new orders; its wall time in seconds."""
    from portwright.apps.dispatch import Dispatcher
    from portwright.store import Store

    store = Store.open(url)
    try:
        tenant = store.tenants.ensure("bench").id
        dispatcher = Dispatcher(store)
        # a warm-up batch of one (connections, statement caches), then the measured batch
        asyncio.run(_apply(store, dispatcher, tenant, first, 1))
        return asyncio.run(_apply(store, dispatcher, tenant, first + 1, batch))
    finally:
        store.close()


def _child(src: str | None, url: str, first: int, batch: int) -> float:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, str(HERE.parent)])
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, str(first), str(batch)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drivers", type=int, default=5000)
    parser.add_argument("--orders", type=int, default=2000, help="active before the rounds")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", help="server URL: a fresh database on it")
    parser.add_argument("--before-src", help="a checkout's src to compare with")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, first, batch = args.child
        print(one_round(url, int(first), int(batch)))
        return 0
    sys.path.insert(0, str(HERE))
    from benchlib import fresh_pg_database

    with contextlib.ExitStack() as stack:
        if args.postgres:
            base = stack.enter_context(fresh_pg_database(args.postgres, "pw_dispatch_bench"))
            url = base.replace("postgresql://", "postgresql+psycopg://", 1)
        else:
            url = f"sqlite:///{tempfile.mkdtemp(prefix='pw-dispatch-bench-')}/app.sqlite"
        prepare(url, args.drivers, args.orders, args.batch)
        first = 10_000_000
        rows = []
        for n in range(args.rounds):
            after = _child(None, url, first, args.batch)
            first += args.batch + 1
            before = None
            if args.before_src:
                before = _child(args.before_src, url, first, args.batch)
                first += args.batch + 1
            rows.append((after, before))
            ratio = f"  before/after {before / after:.2f}" if before else ""
            print(f"round {n + 1}: after {after * 1000:.1f} ms"
                  + (f", before {before * 1000:.1f} ms" if before else "") + ratio,
                  flush=True)  # fmt: skip
        load = os.getloadavg()
    afters = [a for a, _ in rows]
    report: dict[str, Any] = {
        "database": "postgresql" if args.postgres else "sqlite",
        "drivers": args.drivers,
        "active_orders": args.orders,
        "batch": args.batch,
        "after_ms_median": round(statistics.median(afters) * 1000, 1),
        "load_avg_end": load,
    }
    if args.before_src:
        befores = [b for _, b in rows if b is not None]
        report["before_ms_median"] = round(statistics.median(befores) * 1000, 1)
        report["before_over_after_median"] = round(
            statistics.median(b / a for a, b in rows if b is not None), 2
        )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
