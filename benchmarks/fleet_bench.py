"""Fleet benchmark: Portwright's engines against Crawlee for Python, the ladder batch, a soak.

    python benchmarks/fleet_bench.py                  # everything (takes several minutes)
    python benchmarks/fleet_bench.py --sections compare --static 400 --js 120
    python benchmarks/fleet_bench.py --sections soak --soak-pages 2000

Sections (each runs in its own child process; the parent hosts the sandbox world
and samples the child's whole process tree, Chromium included):

- compare: the same sandbox pages at the same concurrency, one system at a
  time: Portwright's ladder (learned HTTP rung, no proxies) vs Crawlee's
  ParselCrawler on the static catalogue; Portwright's browser rung vs
  Crawlee's PlaywrightCrawler (Debian's Chromium) on the JS-rendered pages,
  twice: isolated (Portwright without a session: a context per page; Crawlee
  with incognito pages) and shared (Portwright with one session id: one
  context; Crawlee's default: pages in one context per browser).
  Reported: pages/s and peak memory, and Portwright / Crawlee ratios.
- batch: 500 URLs over the four scrape sites through the proxy tiers with tier
  memory in SQLite; success rate and rung per site; then a second process on
  the same database fetches each site once and must start on the learned rung.
- soak: N browser pages through one pool (a fresh context each, browsers
  recycled every 100 pages); the memory curve, and Chromium processes left
  after the pool closed.

Memory is PSS summed over the process tree (shared pages split among the
processes sharing them), sampled every 100 ms; a sum of RSS would count
Chromium's shared pages once per process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from portwright.engines.browser import tree_pss_bytes  # noqa: E402

MB = 1024 * 1024
SITES = ("scrape-static", "scrape-js", "scrape-guarded", "scrape-captcha")
CHEAPEST = {
    "scrape-static": "http",
    "scrape-js": "browser",
    "scrape-guarded": "browser",
    "scrape-captcha": "http",
}


# -- the parent: world, children, memory sampling ---------------------------------------------


def _world(*, rate_limited: bool) -> Any:
    from portwright.sandbox import SandboxWorld, captcha, proxies, scrape

    specs = scrape.specs()
    if not rate_limited:  # the comparison measures the crawlers, not the site's token bucket
        specs = [dataclasses.replace(s, options={**s.options, "rate_per_s": 0}) for s in specs]
    return SandboxWorld([*specs, *captcha.specs({"solve_time_s": 0.05}), *proxies.specs()], seed=7)


def _run_child(args: list[str]) -> dict[str, Any]:
    """Run `fleet_bench.py --child …`, sampling its process tree's RSS; its JSON plus the peak."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_pss_bytes(process.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate(timeout=3600)
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed with {process.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_pss_mb"] = round(peak / MB, 1)
    return result


PAIRS = {
    "static (HTTP)": ("portwright-static", "crawlee-static"),
    "js, a context per page": ("portwright-js", "crawlee-jsisolated"),
    "js, one shared session": ("portwright-jssession", "crawlee-js"),
}


def compare(static: int, js: int, concurrency: int, repeat: int, js_repeat: int) -> dict[str, Any]:
    """Each pair runs alternately (ours, theirs, ours, …); medians of pages/s, max of memory."""
    with _world(rate_limited=False) as world:
        urls = {
            "static": [f"{world.url('scrape-static')}/product/{i}" for i in range(1, static + 1)],
            "js": [f"{world.url('scrape-js')}/product/{i}" for i in range(1, js + 1)],
        }
        samples: dict[str, list[dict[str, Any]]] = {}
        for label, pair in PAIRS.items():
            kind = "static" if label.startswith("static") else "js"
            if not urls[kind]:
                continue
            for _ in range(repeat if kind == "static" else js_repeat):
                for name in pair:
                    run = _run_child([name, str(concurrency), json.dumps(urls[kind])])
                    samples.setdefault(name, []).append(run)
                    print(f"  {name:22} {run}", file=sys.stderr)
    runs = {
        name: {
            "pages": got[0]["pages"],
            "ok": min(r["ok"] for r in got),
            "runs": len(got),
            "pages_per_s": statistics.median(r["pages_per_s"] for r in got),
            "pages_per_s_each": [r["pages_per_s"] for r in got],
            "peak_pss_mb": max(r["peak_pss_mb"] for r in got),
        }
        for name, got in samples.items()
    }
    ratios = {}
    for label, (mine, other) in PAIRS.items():
        if mine in runs:
            ours, theirs = runs[mine], runs[other]
            ratios[label] = {
                "pages_per_s_ratio": round(ours["pages_per_s"] / theirs["pages_per_s"], 2),
                "peak_memory_ratio": round(ours["peak_pss_mb"] / theirs["peak_pss_mb"], 2),
            }
    return {"concurrency": concurrency, "runs": runs, "ratios": ratios}


def batch(total: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp, _world(rate_limited=True) as w:
        database = f"sqlite:///{Path(tmp) / 'app.sqlite'}"
        share = total // 5
        mix = {
            "scrape-static": total - 3 * share,
            "scrape-js": share,
            "scrape-guarded": share,
            "scrape-captcha": share,
        }
        urls = [
            (site, f"{w.url(site)}/product/{i + 1}") for site, n in mix.items() for i in range(n)
        ]
        catalog = json.dumps(_catalog(w))
        solver = w.url("captcha-solver")
        first = _run_child(["batch", str(concurrency), json.dumps(urls), database, solver, catalog])
        probe = [(site, f"{w.url(site)}/product/999") for site in SITES]
        second = _run_child(["batch", "1", json.dumps(probe), database, solver, catalog])
    first["second_worker"] = second["per_site"]
    return first


def _catalog(world: Any) -> list[dict[str, str]]:
    from portwright.sandbox.proxies import proxy_catalog

    return [dict(row) for row in proxy_catalog(world)]


def soak(pages: int, concurrency: int, recycle: int) -> dict[str, Any]:
    with _world(rate_limited=False) as world:
        base = world.url("scrape-js")
        return _run_child(["soak", str(concurrency), base, str(pages), str(recycle)])


# -- the children ------------------------------------------------------------------------------


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


async def child_portwright(kind: str, concurrency: int, urls: list[str]) -> None:
    """kind: static (auto ladder), js (browser rung, private), jssession (one session)."""
    from portwright.engines.browser import BrowserPool, PoolConfig
    from portwright.engines.ladder import Ladder, Rule

    rules = {"title": Rule("h1.title")}
    per_browser = max(1, concurrency // 2)
    gate = asyncio.Semaphore(concurrency)
    ok = 0
    async with contextlib.AsyncExitStack() as stack:
        pool = None
        if kind.startswith("js"):  # the static run starts no browser (nor Playwright's driver)
            config = PoolConfig(max_browsers=2, contexts_per_browser=per_browser)
            pool = await stack.enter_async_context(BrowserPool(config=config))
        ladder = await stack.enter_async_context(Ladder(browsers=pool))

        async def one(url: str) -> None:
            nonlocal ok
            async with gate:
                if kind.startswith("js"):
                    session = "bench" if kind == "jssession" else None
                    result = await ladder.fetch(
                        url,
                        engine="browser",
                        wait_for="h1.title",
                        extract=rules,
                        session_id=session,
                    )
                else:
                    result = await ladder.fetch(url, extract=rules)
                ok += bool(result.extracted["title"])

        began = time.monotonic()
        await asyncio.gather(*(one(u) for u in urls))
        elapsed = time.monotonic() - began
    _emit(
        {
            "pages": len(urls),
            "ok": ok,
            "seconds": round(elapsed, 2),
            "pages_per_s": round(len(urls) / elapsed, 2),
        }
    )


async def child_crawlee(kind: str, concurrency: int, urls: list[str]) -> None:
    """kind: static (ParselCrawler), js (PlaywrightCrawler), jsisolated (incognito pages)."""
    from crawlee import ConcurrencySettings
    from crawlee.crawlers import (
        ParselCrawler,
        ParselCrawlingContext,
        PlaywrightCrawler,
        PlaywrightCrawlingContext,
    )
    from crawlee.storage_clients import MemoryStorageClient

    from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium

    settings = ConcurrencySettings(
        min_concurrency=concurrency, max_concurrency=concurrency, desired_concurrency=concurrency
    )
    ok = 0
    common: dict[str, Any] = {
        "concurrency_settings": settings,
        "storage_client": MemoryStorageClient(),
        "max_request_retries": 2,
        "configure_logging": False,
    }
    crawler: Any
    if kind.startswith("js"):
        crawler = PlaywrightCrawler(
            browser_type="chromium",
            headless=True,
            use_incognito_pages=kind == "jsisolated",
            browser_launch_options={
                "executable_path": find_chromium(),
                "args": list(CHROMIUM_ARGS),
            },
            **common,
        )

        @crawler.router.default_handler
        async def js_handler(context: PlaywrightCrawlingContext) -> None:
            nonlocal ok
            await context.page.wait_for_selector("h1.title", state="attached")
            title = await context.page.inner_text("h1.title")  # read before counting:
            ok += bool(title)  # `ok += await …` would lose updates across the await

    else:
        crawler = ParselCrawler(**common)

        @crawler.router.default_handler
        async def static_handler(context: ParselCrawlingContext) -> None:
            nonlocal ok
            ok += bool(context.selector.css("h1.title::text").get())

    began = time.monotonic()
    stats = await crawler.run(urls)
    elapsed = time.monotonic() - began
    _emit(
        {
            "pages": len(urls),
            "ok": ok,
            "finished": stats.requests_finished,
            "failed": stats.requests_failed,
            "seconds": round(elapsed, 2),
            "pages_per_s": round(len(urls) / elapsed, 2),
        }
    )


async def child_batch(
    concurrency: int, urls: list[list[str]], database: str, solver_url: str, catalog: str
) -> None:
    from portwright.engines.browser import BrowserPool, PoolConfig
    from portwright.engines.ladder import FetchResult, Ladder, Rule, StoreTierMemory
    from portwright.resources import ProxyPool, SolverChain, StaticProxyList, TwoCaptchaSolver
    from portwright.resources.proxies import StoreBurnLedger
    from portwright.store import Store

    rules = {"title": Rule("h1.title"), "price": Rule("span.price", attribute="data-amount")}
    store = Store.open(database)
    proxies = ProxyPool(
        [StaticProxyList.from_catalog("sandbox", json.loads(catalog))],
        ledger=StoreBurnLedger(store),
    )
    solver = SolverChain({"sandbox": TwoCaptchaSolver(solver_url, "sandbox-key", poll_s=0.05)})
    gate = asyncio.Semaphore(concurrency)
    outcomes: list[tuple[str, Any]] = []
    async with (
        BrowserPool(config=PoolConfig(max_browsers=2, contexts_per_browser=4)) as pool,
        Ladder(
            browsers=pool, proxies=proxies, captcha=solver, memory=StoreTierMemory(store)
        ) as ladder,
    ):

        async def one(site: str, url: str) -> None:
            session = "batch-captcha" if site == "scrape-captcha" else None
            async with gate:
                try:
                    result = await ladder.fetch(url, extract=rules, session_id=session)
                except Exception as exc:
                    outcomes.append((site, repr(exc)[:100]))
                else:
                    outcomes.append((site, result))

        began = time.monotonic()
        await asyncio.gather(*(one(site, url) for site, url in urls))
        elapsed = time.monotonic() - began
    store.close()
    per_site: dict[str, Any] = {}
    for site in SITES:
        mine = [r for s, r in outcomes if s == site]
        good = [r for r in mine if isinstance(r, FetchResult) and r.extracted["title"]]
        per_site[site] = {
            "urls": len(mine),
            "succeeded": len(good),
            "rungs": dict(Counter(r.rung for r in good)),
            "started_on_learned": sum(
                1 for r in good if r.started_on == CHEAPEST[site] and not r.climbed
            ),
            "credits": sum(r.credits for r in good),
            "errors": dict(Counter(r for r in mine if isinstance(r, str))),
        }
    succeeded = sum(v["succeeded"] for v in per_site.values())
    _emit(
        {
            "urls": len(urls),
            "succeeded": succeeded,
            "success_rate": round(succeeded / len(urls), 4),
            "seconds": round(elapsed, 2),
            "per_site": per_site,
        }
    )


async def child_soak(concurrency: int, base: str, pages: int, recycle: int) -> None:
    from portwright.engines.browser import BrowserPool, PoolConfig, browser_processes

    config = PoolConfig(
        max_browsers=2, contexts_per_browser=max(1, concurrency // 2), recycle_after_pages=recycle
    )
    gate = asyncio.Semaphore(concurrency)
    curve: list[dict[str, float]] = []
    done = 0
    failures = 0
    began = time.monotonic()
    pool = BrowserPool(config=config)
    await pool.start()

    async def one(index: int) -> None:
        nonlocal done, failures
        async with gate:
            try:
                async with pool.context(seed=str(index)) as lease:
                    page = await lease.new_page()
                    await page.goto(f"{base}/product/{index % 5000 + 1}")
                    await page.wait_for_selector("h1.title", state="attached")
            except Exception:
                failures += 1
            done += 1
            if done % 100 == 0:
                curve.append(
                    {
                        "pages": done,
                        "pss_mb": round(tree_pss_bytes() / MB, 1),
                        "browsers": pool.stats().browsers,
                        "seconds": round(time.monotonic() - began, 1),
                    }
                )

    await asyncio.gather(*(one(i) for i in range(pages)))
    stats = pool.stats()
    await pool.aclose()
    await asyncio.sleep(0.5)
    left = browser_processes()
    _emit(
        {
            "pages": pages,
            "failures": failures,
            "seconds": round(time.monotonic() - began, 1),
            "launched": stats.launched,
            "recycled": stats.recycled,
            "curve": curve,
            "chromium_left_after_close": len(left),
        }
    )


def child(argv: list[str]) -> None:
    name = argv[0]
    if name.startswith(("portwright-", "crawlee-")):
        system, kind = name.split("-")
        runner = child_portwright if system == "portwright" else child_crawlee
        asyncio.run(runner(kind, int(argv[1]), json.loads(argv[2])))
    elif name == "batch":
        asyncio.run(child_batch(int(argv[1]), json.loads(argv[2]), argv[3], argv[4], argv[5]))
    elif name == "soak":
        asyncio.run(child_soak(int(argv[1]), argv[2], int(argv[3]), int(argv[4])))
    else:
        raise SystemExit(f"unknown child {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    parser.add_argument("--sections", default="compare,batch,soak")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--static", type=int, default=400, help="static pages per system")
    parser.add_argument("--js", type=int, default=120, help="JS pages per system")
    parser.add_argument("--repeat", type=int, default=5, help="alternating static runs")
    parser.add_argument("--js-repeat", type=int, default=1, help="alternating JS runs")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--soak-pages", type=int, default=2000)
    parser.add_argument("--recycle", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}
    sections = args.sections.split(",")
    with contextlib.suppress(OSError):
        results["load_average_before"] = os.getloadavg()
    if "compare" in sections:
        print("compare …", file=sys.stderr)
        results["compare"] = compare(
            args.static, args.js, args.concurrency, args.repeat, args.js_repeat
        )
    if "batch" in sections:
        print("batch …", file=sys.stderr)
        results["batch"] = batch(args.batch, args.concurrency)
    if "soak" in sections:
        print("soak …", file=sys.stderr)
        results["soak"] = soak(args.soak_pages, args.concurrency, args.recycle)
    with contextlib.suppress(OSError):
        results["load_average_after"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
