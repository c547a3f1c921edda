"""Backtest (issue 18): a predictor-driven watcher vs fixed-interval polling, equal budget.

Weeks of simulated consulate releases (`portwright.sandbox.consulate.releases`,
seeded) per seed; each released slot is taken by a competitor after an
exponential lifetime (mean `--take-mean` s). A release is *seen* by the first
poll at or after it while one of its slots is still open; its detection delay
is that poll's time minus the release time (never seen = missed, counted as
an infinite delay, so a median can only improve by seeing more, sooner).

- **fixed**: one poll every `3600 / --per-hour` seconds.
- **watcher**: `ReleasePredictor` trained on `--train-weeks` of fixed-interval
  scans, then learning online from its own scans; `PollPlanner` polls densely
  inside predicted windows and for `--follow` seconds after it saw new slots
  (cancellations come in bursts), sparsely outside; every poll passes two
  `RequestBudget`s — the fixed poller's daily total (so the watcher never
  spends more than the baseline in any 24 h) and the portal's hourly cap
  (`--cap`, requests per hour).

- **--engine hub**: the shipped `WatchHub` instead (one booking waiting throughout, on a
  `ManualClock`), its daily allowance set to the fixed poller's total and the portal
  capped at `--cap` an hour; it has no separate daily budget, so it may spend a little
  more or less than the baseline.

Prints, per seed and pooled: median and p90 delay, releases seen, requests
spent, and the ratio of medians (target <= 0.2); slots won against competitors
(a slot a poll saw before its competitor took it) and their ratio (target >= 1.5).
`--chart FILE` writes a PNG of both (needs matplotlib). Simulated time only: the
whole run takes a few seconds of CPU.

    python benchmarks/predictor_backtest.py [--seeds 10] [--weeks 4] [--train-weeks 4]
        [--per-hour 12] [--cap 120] [--take-mean 900] [--pad 600] [--dense-share 0.6]
        [--follow 300] [--engine planner|hub] [--chart FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import math
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from portwright.intelligence import (
    PollPlanner,
    PredictorConfig,
    ReleasePredictor,
    RequestBudget,
    ScanResult,
    WatchHub,
    WatchKey,
)
from portwright.sandbox.consulate.releases import (
    DAY_S,
    ReleasePattern,
    SlotRelease,
    generate_releases,
)
from portwright.testing import ManualClock

START = datetime(2030, 1, 7, tzinfo=UTC).timestamp()  # a Monday
OFFSET = 3600
KEY = "consulate/ACC/tourist"


@dataclass(frozen=True)
class World:
    releases: list[SlotRelease]
    ends: list[float]  # when each release's last slot is taken
    slots: list[tuple[float, float]]  # (released, taken) of every slot, by release time


def _uniform(seed: int, label: str) -> float:
    digest = hashlib.blake2b(f"{seed}|{label}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def build_world(seed: int, days: int, take_mean: float) -> World:
    pattern = ReleasePattern(utc_offset_s=OFFSET)
    releases = generate_releases(
        "ACC", "tourist", pattern, seed=seed, start=START, end=START + days * DAY_S
    )
    ends, slots = [], []
    for i, r in enumerate(releases):
        lives = [-take_mean * math.log(1 - _uniform(seed, f"{i}.{j}")) for j in range(r.slots)]
        ends.append(r.at + max(lives))
        slots += [(r.at, r.at + life) for life in lives]
    slots.sort()
    return World(releases, ends, slots)


def open_slots(world: World, t: float, horizon: float) -> int:
    lo = bisect.bisect_left(world.slots, (t - horizon, -math.inf))
    hi = bisect.bisect_right(world.slots, (t, math.inf))
    return sum(1 for at, taken in world.slots[lo:hi] if at <= t < taken)


def delays(world: World, polls: list[float], start: float) -> list[float]:
    out = []
    for r, end in zip(world.releases, world.ends, strict=True):
        if r.at < start:
            continue
        i = bisect.bisect_left(polls, r.at)
        out.append(polls[i] - r.at if i < len(polls) and polls[i] < end else math.inf)
    return out


def slots_won(world: World, polls: list[float], start: float) -> int:
    """Slots a poll saw open before a competitor took them (a waiting booking books each)."""
    won = 0
    for at, taken in world.slots:
        if at < start:
            continue
        i = bisect.bisect_left(polls, at)
        won += i < len(polls) and polls[i] < taken
    return won


def fixed_polls(start: float, end: float, interval: float) -> list[float]:
    n = int((end - start) // interval)
    return [start + k * interval for k in range(n)]


def watcher_polls(
    world: World, start: float, end: float, args: argparse.Namespace, horizon: float
) -> list[float]:
    interval = 3600 / args.per_hour
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    train_start = start - args.train_weeks * 7 * DAY_S
    for t in fixed_polls(train_start, start, interval):  # history: the fixed poller's scans
        pred.observe(KEY, t, open_slots(world, t, horizon))
    planner = PollPlanner(
        per_day=round(DAY_S / interval),
        per_hour=args.cap,
        pad_s=args.pad,
        dense_share=args.dense_share,
    )
    daily = RequestBudget(round(DAY_S / interval), DAY_S)
    hourly = RequestBudget(args.cap, 3600.0)
    polls: list[float] = []
    t, refreshed, windows = start, -math.inf, ()
    last_open, follow_until = 0, -math.inf
    while t < end:
        if t - refreshed >= 3600:
            windows, refreshed = pred.forecast(KEY, t, 2 * DAY_S).windows, t
        for _ in range(10):  # both budgets must agree on one time
            t = max(t, daily.next_allowed(t), hourly.next_allowed(t))
            if daily.next_allowed(t) == t == hourly.next_allowed(t):
                break
        if t >= end:
            break
        if not (daily.try_acquire(t) and hourly.try_acquire(t)):
            raise RuntimeError(f"a budget refused the time it offered ({t})")
        polls.append(t)
        seen = open_slots(world, t, horizon)
        pred.observe(KEY, t, seen)
        if seen > last_open:  # new slots: a burst may continue, look again soon
            follow_until = t + args.follow
        last_open = seen
        t = planner.next_poll(windows, t, follow_until)
    return polls


def hub_polls(
    world: World, start: float, end: float, args: argparse.Namespace, horizon: float
) -> list[float]:
    """The shipped watcher (`WatchHub`) on a manual clock, one booking waiting throughout
    (it never takes a slot, so the job keeps watching), its daily allowance set to the fixed
    poller's total (`daily_share`), the portal capped at `--cap` an hour."""
    interval = 3600 / args.per_hour
    key = WatchKey("consulate", "ACC", "tourist")
    pred = ReleasePredictor(PredictorConfig(utc_offset_s=OFFSET))
    for t in fixed_polls(start - args.train_weeks * 7 * DAY_S, start, interval):
        pred.observe(str(key), t, open_slots(world, t, horizon))
    clock = ManualClock(start)
    polls: list[float] = []
    # slot ids (release index, slot index) so the hub tells new slots from old ones
    index = [(at, taken, i) for i, (at, taken) in enumerate(world.slots)]

    async def scan(_key: WatchKey) -> ScanResult:
        t = clock.now()
        polls.append(t)
        lo = bisect.bisect_left(index, (t - horizon, -math.inf, -1))
        hi = bisect.bisect_right(index, (t, math.inf, len(index)))
        return ScanResult(slots=tuple(str(i) for at, taken, i in index[lo:hi] if at <= t < taken))

    async def never(_booking: str, _key: WatchKey, _slot: str) -> bool:
        return False

    hub = WatchHub(
        scan=scan, hand_off=never, per_hour=args.cap, clock=clock, predictor=pred,
        daily_share=DAY_S / interval / (args.cap * 24), pad_s=args.pad, follow_s=args.follow,
    )  # fmt: skip

    async def run() -> None:
        t = start
        while t < end:  # the booking re-waits after each (refused) offer
            hub.wait(key, "b")
            if not await hub.step():
                break
            t = clock.now()

    asyncio.run(run())
    return [t for t in polls if t < end]


def summary(ds: list[float]) -> tuple[float, float, int]:
    ordered = sorted(ds)
    median = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return median, p90, sum(1 for d in ds if math.isfinite(d))


def fmt(x: float) -> str:
    return f"{x:7.0f}s" if math.isfinite(x) else "  missed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--weeks", type=int, default=4, help="weeks compared")
    ap.add_argument("--train-weeks", type=int, default=4, help="weeks of history first")
    ap.add_argument("--per-hour", type=float, default=12.0, help="fixed polls per hour")
    ap.add_argument("--cap", type=int, default=120, help="portal cap, requests per hour")
    ap.add_argument("--take-mean", type=float, default=900.0, help="mean slot lifetime, s")
    ap.add_argument("--pad", type=float, default=600.0, help="padding around windows, s")
    ap.add_argument("--follow", type=float, default=300.0, help="dense after new slots, s")
    ap.add_argument(
        "--engine",
        choices=("planner", "hub"),
        default="planner",
        help="planner: the planner + both budgets in a loop here; hub: the shipped WatchHub",
    )
    ap.add_argument("--dense-share", type=float, default=0.6, help="budget share for windows")
    ap.add_argument(
        "--chart", type=Path, default=None, help="write a PNG chart here (needs matplotlib)"
    )
    args = ap.parse_args()
    if args.seeds < 1 or args.weeks < 1 or args.train_weeks < 0 or args.per_hour <= 0:
        ap.error("--seeds and --weeks must be >= 1, --train-weeks >= 0, --per-hour > 0")
    horizon = 20 * args.take_mean
    days = (args.train_weeks + args.weeks) * 7
    test_start = START + args.train_weeks * 7 * DAY_S
    end = START + days * DAY_S
    print(
        f"{args.seeds} seeds x {args.weeks} weeks compared after {args.train_weeks} weeks of "
        f"history; fixed = every {3600 / args.per_hour:.0f} s; cap {args.cap}/h; "
        f"slot lifetime mean {args.take_mean:.0f} s"
    )
    all_fixed: list[float] = []
    all_watch: list[float] = []
    kinds: list[str] = []
    sizes: list[int] = []
    spent = [0, 0]
    won = [0, 0]
    released = 0
    began = time.perf_counter()
    print(
        f"{'seed':>4} {'releases':>8} | {'fixed median':>12} {'p90':>8} {'seen':>5} "
        f"{'reqs':>6} | {'watcher median':>14} {'p90':>8} {'seen':>5} {'reqs':>6} | ratio"
    )
    for seed in range(1, args.seeds + 1):
        gen = time.perf_counter()
        world = build_world(seed, days, args.take_mean)
        gen = time.perf_counter() - gen
        fixed = fixed_polls(test_start, end, 3600 / args.per_hour)
        polls = hub_polls if args.engine == "hub" else watcher_polls
        watch = polls(world, test_start, end, args, horizon)
        fd, wd = delays(world, fixed, test_start), delays(world, watch, test_start)
        (fm, fp, fs), (wm, wp, ws) = summary(fd), summary(wd)
        all_fixed += fd
        kinds += [r.kind for r in world.releases if r.at >= test_start]
        sizes += [r.slots for r in world.releases if r.at >= test_start]
        all_watch += wd
        spent[0] += len(fixed)
        spent[1] += len(watch)
        won[0] += slots_won(world, fixed, test_start)
        won[1] += slots_won(world, watch, test_start)
        released += sum(1 for at, _ in world.slots if at >= test_start)
        print(
            f"{seed:>4} {len(fd):>8} | {fmt(fm):>12} {fmt(fp):>8} {fs:>5} {len(fixed):>6} | "
            f"{fmt(wm):>14} {fmt(wp):>8} {ws:>5} {len(watch):>6} | {wm / fm:5.2f}"
            f"   ({days} days generated in {gen * 1000:.1f} ms)"
        )
    (fm, fp, fs), (wm, wp, ws) = summary(all_fixed), summary(all_watch)
    print(
        f"pooled: {len(all_fixed)} releases; fixed median {fmt(fm).strip()} p90 "
        f"{fmt(fp).strip()} seen {fs}; watcher median {fmt(wm).strip()} p90 "
        f"{fmt(wp).strip()} seen {ws}"
    )
    for kind in ("window", "cancellation"):
        f_k = [d for d, k in zip(all_fixed, kinds, strict=True) if k == kind]
        w_k = [d for d, k in zip(all_watch, kinds, strict=True) if k == kind]
        print(
            f"  {kind:<12} {len(f_k):>4}: fixed median {fmt(summary(f_k)[0]).strip()}, "
            f"watcher median {fmt(summary(w_k)[0]).strip()}"
        )
    f_s = [d for d, n in zip(all_fixed, sizes, strict=True) for _ in range(n)]
    w_s = [d for d, n in zip(all_watch, sizes, strict=True) for _ in range(n)]
    print(
        f"  per slot     {len(f_s):>4}: fixed median {fmt(summary(f_s)[0]).strip()}, "
        f"watcher median {fmt(summary(w_s)[0]).strip()} "
        f"(ratio {summary(w_s)[0] / summary(f_s)[0]:.3f})"
    )
    print(f"requests: fixed {spent[0]}, watcher {spent[1]} (ratio {spent[1] / spent[0]:.3f})")
    print(
        f"slots won against competitors (of {released} released): fixed {won[0]}, "
        f"watcher {won[1]} (ratio {won[1] / max(won[0], 1):.2f}, target >= 1.5)"
    )
    print(f"median delay ratio watcher/fixed, per release: {wm / fm:.3f} (target <= 0.2)")
    print(f"seen ratio watcher/fixed: {ws / max(fs, 1):.2f}")
    print(f"wall time {time.perf_counter() - began:.1f} s")
    if args.chart is not None:
        chart(args, f_s, w_s, won, released, spent)
        print(f"chart written to {args.chart}")


def chart(
    args: argparse.Namespace,
    fixed: list[float],
    watch: list[float],
    won: list[int],
    released: int,
    spent: list[int],
) -> None:
    """Per-slot detection delay (share seen within t) and slots won, fixed vs watcher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, bars) = plt.subplots(
        1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2.2, 1]}, dpi=100
    )
    limit = 2 * 3600 / args.per_hour  # two fixed intervals
    for label, ds, colour in (
        ("fixed interval", fixed, "#888888"),
        (f"{args.engine} (predicted windows)", watch, "#1f6fb4"),
    ):
        finite = sorted(d for d in ds if math.isfinite(d))
        xs = [0.0] + [d for d in finite if d <= limit] + [limit]
        ys = [0.0] + [(i + 1) / len(ds) for i, d in enumerate(finite) if d <= limit]
        ys.append(ys[-1])
        cdf.step(xs, ys, where="post", label=label, color=colour)
    cdf.set_xlabel("detection delay per released slot (s)")
    cdf.set_ylabel("share of slots seen within the delay")
    cdf.set_xlim(0, limit)
    cdf.set_ylim(0, 1)
    cdf.grid(alpha=0.3)
    cdf.legend(loc="lower right")
    cdf.set_title(
        f"{args.seeds} seeds x {args.weeks} weeks, same requests "
        f"({spent[1] / spent[0]:.2f}x), slot lifetime {args.take_mean:.0f} s",
        fontsize=9,
    )
    bars.bar(["fixed", args.engine], won, color=["#888888", "#1f6fb4"])
    bars.axhline(released, color="black", linewidth=0.8, linestyle="--")
    bars.set_title(f"slots won of {released} (ratio {won[1] / max(won[0], 1):.2f})", fontsize=9)
    fig.tight_layout()
    args.chart.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.chart)
    plt.close(fig)


if __name__ == "__main__":
    main()
