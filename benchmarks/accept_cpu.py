"""CPU per accepted batch item (issue 14): `POST /v1/batch` of N URLs, paired before/after.

The parent alternates child processes over two source trees (`--before`, `--after`: each a
directory holding `src/portwright`), `--rounds` times each, on a fresh database per child.
A child starts the runtime without workers (nothing runs an item), builds the gateway app,
and answers `--batches` batches of `--items` fresh URLs through the ASGI app in-process
(httpx's ASGITransport: the middleware chain, body validation, the route, the 202 body;
the request body encoded once beforehand, the reply read as bytes). Each batch's
`time.process_time()` (every thread of the process: the route's store work runs on
`asyncio.to_thread`) is divided by the items. The DBOS enqueue that follows acceptance
(the chunks' in `JobService.submit_many`'s thread since 2026-12-07, in the background
before; the other jobs' in the background, `JobService._enqueue_accepted`) is turned off in
both trees so the figure is the acceptance alone, unless `--enqueue`: then it runs, and
each batch's figure lasts until the 202 is read AND the enqueue has ended (what the
workers wait for). The app's lifespan (relay, pollers) is not started.

    python benchmarks/accept_cpu.py --before /tmp/accept-before --after . \\
        [--database sqlite|postgres] [--items 1000] [--batches 8] [--rounds 5] [--wall]
        [--enqueue]

`--wall` measures each batch's wall time instead (perf_counter, request sent to 202 read:
what the client waits, the database's work included).

It prints, per round, each tree's median and mean of its batches' CPU per item (the mean
includes the full garbage collections that batches trigger now and then), then the median
over rounds of each, with its range, and after/before.
"""

from __future__ import annotations

import argparse
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


def _child(args: argparse.Namespace) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from pydantic import SecretStr

    import portwright
    from portwright.adapters import AdapterRegistry
    from portwright.adapters.scrape import ScrapeAdapter
    from portwright.composition import build_runtime
    from portwright.gateway import UrlGuard, create_app, issue_key
    from portwright.orchestrator import JobService
    from portwright.settings import Settings

    assert str(Path(portwright.__file__).resolve()).startswith(str(Path(args.tree).resolve()))

    async def no_enqueue(self: Any, records: Any) -> None:
        return None

    if not args.enqueue:
        import portwright.orchestrator._service as service_module

        JobService._enqueue_accepted = no_enqueue  # type: ignore[method-assign]
        if hasattr(service_module, "enqueue_chunks"):  # the chunks, enqueued in its thread
            service_module.enqueue_chunks = lambda runtime, chunks: 0
    site = "127.0.0.1:18999"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=args.database_url or f"sqlite:///{Path(tmp) / 'app.sqlite'}",
            worker_id="accept-cpu",
            master_key=SecretStr("bench-master-key-" + "x" * 32),
            url_allowlist=[site],
            rate_limit_default="1000000/minute",
            rate_limit_write="1000000/minute",
            log_json=False,
        )
        registry = AdapterRegistry()
        registry.register(ScrapeAdapter.with_guard(UrlGuard.from_allowlist(settings.url_allowlist)))
        runtime = build_runtime(settings, registry, run_workers=False)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(runtime.start).result()
        try:
            service = JobService(runtime)
            key = issue_key(runtime.store, tenant="acme", plan="enterprise").key
            app = create_app(service, settings)
            if args.gc_freeze:  # what a server could do once started: see --help
                import gc

                gc.collect()
                gc.freeze()

            def body(n: int) -> bytes:
                items = [{"url": f"http://{site}/product/{n}-{i}"} for i in range(args.items)]
                return json.dumps({"items": items}).encode()

            if args.dump:  # one batch of varied items, its 202 body written as received
                varied: list[dict[str, Any]] = [
                    {"url": f"http://{site}/p/1"},
                    {"url": f"http://{site}/p/2?q=é&x=1", "engine": "http", "screenshot": True},
                    {
                        "url": f"http://{site}/p/3",
                        "extract": {"t": {"selector": "h1"}, "a": {"selector": "a", "all": True}},
                        "wait_for": "#main",
                        "proxy_country": "de",
                        "session_id": "s-1",
                    },
                ] * 4

                async def dump() -> bytes:
                    transport = httpx.ASGITransport(app=app)
                    headers = {"authorization": f"Bearer {key}"}
                    async with httpx.AsyncClient(
                        transport=transport, base_url="http://gw", headers=headers
                    ) as api:
                        reply = await api.post("/v1/batch", json={"items": varied})
                        assert reply.status_code == 202, reply.text
                        return await reply.aread()

                Path(args.dump).write_bytes(asyncio.run(dump()))
                return

            profiler: Any = None
            clock = time.perf_counter if args.wall else time.process_time

            async def run() -> list[float]:
                transport = httpx.ASGITransport(app=app)
                headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
                per_item: list[float] = []
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://gw", headers=headers, timeout=300
                ) as api:
                    for n in range(args.warmup + args.batches):
                        if n == args.warmup and profiler is not None:
                            profiler.enable()
                        content = body(n)
                        began = clock()
                        reply = await api.post("/v1/batch", content=content)
                        raw = await reply.aread()
                        if args.enqueue:  # and until the enqueue has ended
                            await asyncio.gather(*service._enqueueing)
                        spent = clock() - began
                        assert reply.status_code == 202, raw[:500]
                        if n >= args.warmup:
                            per_item.append(spent / args.items)
                return per_item

            if args.profile:
                import cProfile
                import pstats

                async def inline(fn: Any, /, *a: Any, **kw: Any) -> Any:
                    return fn(*a, **kw)

                asyncio.to_thread = inline  # one thread: cProfile sees the store work too
                profiler = cProfile.Profile()
                asyncio.run(run())
                profiler.disable()
                stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative")
                stats.print_stats(args.profile_lines)
                stats.sort_stats("tottime").print_stats(args.profile_lines)
                return
            print(json.dumps(asyncio.run(run())))
        finally:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(runtime.stop).result()


def _run_child(tree: Path, args: argparse.Namespace) -> list[float]:
    from benchlib import fresh_pg_database

    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}:{HERE}"}
    command = (
        [
            sys.executable,
            __file__,
            "--child",
            "--tree",
            str(tree),
            "--items",
            str(args.items),
            "--batches",
            str(args.batches),
            "--warmup",
            str(args.warmup),
        ]
        + (["--gc-freeze"] if args.gc_freeze else [])
        + (["--wall"] if args.wall else [])
        + (["--enqueue"] if args.enqueue else [])
    )

    def go(url: str | None) -> list[float]:
        extra = ["--database-url", url] if url else []
        extra += ["--dump", args.dump] if getattr(args, "dump", None) else []
        out = subprocess.run(
            command + extra, env=env, check=True, capture_output=True, text=True
        ).stdout
        return [] if getattr(args, "dump", None) else list(json.loads(out.splitlines()[-1]))

    if args.database == "postgres":
        with fresh_pg_database(args.postgres, "acceptcpu") as url:
            return go(url)
    return go(None)


def _normalized(raw: bytes) -> str:
    """A 202 body with its ids and timestamps replaced by their place, re-encoded as
    JSONResponse does (key order kept)."""
    reply = json.loads(raw)
    reply["batch_id"] = "<batch>"
    for n, job in enumerate(reply["jobs"]):
        job["id"] = f"<job {n}>"
        job["input"]["batch_id"] = "<batch>"
        job["created_at"] = job["updated_at"] = "<time>"
    return json.dumps(reply, ensure_ascii=False, separators=(",", ":"))


def _compare(trees: dict[str, Path], args: argparse.Namespace) -> None:
    shown: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, tree in trees.items():
            args.dump = str(Path(tmp) / f"{name}.json")
            _run_child(tree.resolve(), args)
            raw = Path(args.dump).read_bytes()
            shown[name] = _normalized(raw)
            print(f"{name}: {len(raw)} bytes, {len(json.loads(raw)['jobs'])} jobs")
    same = shown["before"] == shown["after"]
    print(f"{args.database}: the 202 bodies are {'identical' if same else 'DIFFERENT'}")
    if not same:
        print(shown["before"], shown["after"], sep="\n")
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path)
    parser.add_argument("--after", type=Path, default=HERE.parent)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="instead: one batch of varied items through each tree, the 202 bodies compared "
        "(ids and timestamps aside, key order included)",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="in both trees, gc.freeze() once the app is built: the objects made at start "
        "are no longer scanned by each full collection a batch's allocations trigger",
    )
    parser.add_argument(
        "--wall",
        action="store_true",
        help="instead of CPU: each batch's wall time, request sent to 202 read (what a "
        "client waits: the database's work included, on a machine others share too)",
    )
    parser.add_argument(
        "--enqueue",
        action="store_true",
        help="with the DBOS enqueue that follows acceptance, each batch timed until the 202 "
        "is read and the enqueue has ended",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-lines", type=int, default=60, help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    sys.path.insert(0, str(HERE))
    trees = {"before": args.before, "after": args.after}
    if args.compare:
        _compare(trees, args)
        return
    # per round and tree: the median and the mean of its batches' CPU per item (the mean
    # carries the full garbage collections a batch's allocations trigger now and then)
    seen: dict[str, dict[str, list[float]]] = {t: {"median": [], "mean": []} for t in trees}
    for round_ in range(args.rounds):
        order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
        for name in order:
            per_item = _run_child(trees[name].resolve(), args)
            seen[name]["median"].append(statistics.median(per_item))
            seen[name]["mean"].append(statistics.fmean(per_item))
            print(
                f"round {round_ + 1} {name:6s} median {seen[name]['median'][-1] * 1e6:6.1f} "
                f"mean {seen[name]['mean'][-1] * 1e6:6.1f} us/item (batches: "
                f"{', '.join(f'{x * 1e6:.0f}' for x in per_item)})",
                flush=True,
            )
    what = "wall" if args.wall else "CPU"
    print(f"{args.database}, {args.items} items a batch, {args.rounds} rounds ({what} us/item):")
    for stat in ("median", "mean"):
        b, a = seen["before"][stat], seen["after"][stat]
        print(
            f"  batches' {stat:6s}: before {statistics.median(b) * 1e6:6.1f} "
            f"[{min(b) * 1e6:.0f}..{max(b) * 1e6:.0f}]  after {statistics.median(a) * 1e6:6.1f} "
            f"[{min(a) * 1e6:.0f}..{max(a) * 1e6:.0f}]  after/before "
            f"{statistics.median(a) / statistics.median(b):.2f}"
        )


if __name__ == "__main__":
    main()
