"""CPU per fetched page of the scrape fetch path (issue 14), against bare curl_cffi, paired
before/after.

The parent hosts the sandbox's `scrape-static` catalogue (rate limit lifted, as
`batch_bench.py` does) and runs child processes, each on one source tree (`--before DIR`,
`--after DIR`: each a directory holding `src/portwright`; `--after` defaults to this
checkout), alternating the trees' order round by round (`--rounds`). A child measures, on
the same `--items` product URLs at `--concurrency` at once, `time.process_time()` (every
thread of the process) per page of:

- bare: one curl_cffi `AsyncSession`, one GET a URL, nothing else (the baseline);
- ours: what a batch item's fetch step runs below the chunk runner: a `StepContextImpl`
  per item over a real `Fleet` (no browsers, no proxies; its ladder guarded by the
  runtime's `UrlGuard`, tier memory on a real SQLite store), the scrape adapter's
  `_fetch` step function as `ScrapeAdapter.on_fleet(guard)` runs it (input validation,
  `sc.fetch` through the ladder and `CurlFetcher`, robots.txt, the SSRF guards and the
  pin, the summary and its deliverables), `engine` "http", then the context's close.

Each child first fetches 200 URLs on each path (warm-up: robots.txt, connections, tier
memory), then alternates bare and ours over `--passes` passes of the URLs. A page must come
back 200 with its title on both paths.

    python benchmarks/fetch_cpu.py --before /tmp/fetch-before [--items 2000] [--rounds 3]

Prints each child's ms of CPU per page for bare and ours, then per tree the medians over
rounds of ours, of each child's ours/bare and of its ours - bare (the path's own cost above
curl_cffi; both ratios cancel the load of the child's moment), and after/before of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
WARM = 200


async def _bare(urls: list[str], concurrency: int, session: Any) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(url: str) -> None:
        async with gate:
            response = await session.get(url)
            if response.status_code != 200 or b"<title>" not in response.content:
                raise RuntimeError(f"bare: {url} answered {response.status_code}")

    began = time.process_time()
    await asyncio.gather(*(one(u) for u in urls))
    return time.process_time() - began


async def _ours(urls: list[str], concurrency: int, step: Any) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(url: str) -> None:
        async with gate:
            output = await step(url)
            if output["status"] != 200 or not output["title"]:
                raise RuntimeError(f"ours: {url} gave {output}")

    began = time.process_time()
    await asyncio.gather(*(one(u) for u in urls))
    return time.process_time() - began


async def _child_main(args: argparse.Namespace, urls: list[str]) -> dict[str, Any]:
    from curl_cffi.requests import AsyncSession

    from portwright.adapters.scrape import ScrapeAdapter, ScrapeInput
    from portwright.engines import Fleet
    from portwright.orchestrator._step_context import StepContextImpl
    from portwright.resources import DirectIdentity
    from portwright.resources.ssrf import UrlGuard
    from portwright.store import Store

    allow = [urls[0].split("/")[2]]
    tmp = Path(tempfile.mkdtemp(prefix="fetch-cpu-"))
    store = Store.open(f"sqlite:///{tmp / 'app.sqlite'}")
    fleet = Fleet()
    fleet.add_guard(UrlGuard.from_allowlist(allow))  # the runtime's guard, as Runtime adds it
    fleet.bind(store)  # tier memory shared through the database, as on a worker
    adapter = ScrapeAdapter.on_fleet(UrlGuard.from_allowlist(allow), engines=("auto", "http"))()
    runtime = SimpleNamespace(fleet=fleet, identity=DirectIdentity(), guard=fleet.guard)
    count = iter(range(10**9))

    async def step(url: str) -> dict[str, Any]:
        n = next(count)
        job = SimpleNamespace(
            id=f"job-{n}", tenant_id="bench", portal="scrape", adapter="scrape", notes={}
        )
        sc = StepContextImpl(
            runtime,  # type: ignore[arg-type]
            job,  # type: ignore[arg-type]
            step="fetch",
            attempt=1,
            cookies=[],
            selectors={},  # type: ignore[arg-type]
        )
        try:
            data = ScrapeInput(url=url, engine="http").model_dump(mode="json")
            return await adapter._fetch(sc, data)  # the step function itself
        finally:
            await sc.aclose()

    concurrency = args.concurrency
    bare: list[float] = []
    ours: list[float] = []
    async with AsyncSession(max_clients=concurrency) as session:
        await _bare(urls[:WARM], concurrency, session)
        await _ours(urls[:WARM], concurrency, step)
        for i in range(args.passes):
            if i % 2:
                ours.append(await _ours(urls, concurrency, step))
                bare.append(await _bare(urls, concurrency, session))
            else:
                bare.append(await _bare(urls, concurrency, session))
                ours.append(await _ours(urls, concurrency, step))
    await fleet.aclose()
    n = len(urls)
    return {
        "bare_ms": statistics.median(bare) / n * 1000,
        "ours_ms": statistics.median(ours) / n * 1000,
    }


def _child(args: argparse.Namespace) -> None:
    from portwright.observability import configure_logging
    from portwright.settings import Settings

    configure_logging(Settings(log_level="WARNING", log_json=False))
    urls = json.loads(Path(args.child).read_text())
    import portwright

    result = asyncio.run(_child_main(args, urls))
    result["tree"] = str(Path(portwright.__file__).resolve().parents[2])
    print("RESULT " + json.dumps(result), flush=True)


def _run(tree: Path, urls_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(HERE)])}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(urls_file)]
    command += ["--concurrency", str(args.concurrency), "--passes", str(args.passes)]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(f"child on {tree} failed:\n{done.stdout}\n{done.stderr[-4000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="a tree holding src/portwright")
    parser.add_argument("--after", type=Path, default=HERE.parent)
    parser.add_argument("--items", "-n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--passes", type=int, default=3, help="of the URLs, per child")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return 0
    from benchlib import static_site, static_urls

    from portwright.sandbox import SandboxWorld

    trees = {"after": args.after.resolve()}
    if args.before is not None:
        trees = {"before": args.before.resolve(), **trees}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    print(f"load {os.getloadavg()[0]:.2f}; {args.items} URLs, concurrency {args.concurrency}")
    with (
        tempfile.TemporaryDirectory(prefix="fetch-cpu-") as tmp,
        SandboxWorld(static_site(), seed=14) as world,
    ):
        urls_file = Path(tmp) / "urls.json"
        urls_file.write_text(json.dumps(static_urls(world.url("scrape-static"), args.items)))
        for round_ in range(args.rounds):
            names = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in names:
                result = _run(trees[name], urls_file, args)
                results[name].append(result)
                print(
                    f"round {round_ + 1} {name:6} bare {result['bare_ms']:.3f} ms/page  "
                    f"ours {result['ours_ms']:.3f} ms/page  "
                    f"ours/bare {result['ours_ms'] / result['bare_ms']:.2f}  "
                    f"load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    medians: dict[str, tuple[float, float, float]] = {}
    for name, rows in results.items():
        bare = statistics.median(r["bare_ms"] for r in rows)
        ours = statistics.median(r["ours_ms"] for r in rows)
        # each child's own ratio and overhead: the load of its moment cancels out
        ratio = statistics.median(r["ours_ms"] / r["bare_ms"] for r in rows)
        extra = statistics.median(r["ours_ms"] - r["bare_ms"] for r in rows)
        spread = f"{min(r['ours_ms'] for r in rows):.3f}-{max(r['ours_ms'] for r in rows):.3f}"
        medians[name] = (ours, ratio, extra)
        print(
            f"MEDIAN {name:6} bare {bare:.3f} ms/page  ours {ours:.3f} ms/page ({spread})  "
            f"ours/bare {ratio:.2f}  ours-bare {extra:.3f} ms/page"
        )
    if "before" in medians:
        (ours_a, ratio_a, extra_a), (ours_b, ratio_b, extra_b) = medians["after"], medians["before"]
        print(
            f"after/before: ours {ours_a / ours_b:.3f}, ours/bare {ratio_a / ratio_b:.3f}, "
            f"ours-bare {extra_a / extra_b:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
