"""Backtest (issue 18): a predictor-driven watcher vs fixed-interval polling, equal budget.

Weeks of simulated consulate releases per seed, from the sandbox consulate's own
calendar (`SlotCalendar` on its release model, `portwright.sandbox.consulate.releases`,
seeded; checked against `generate_releases`): each released slot is taken by a
competitor after the sandbox's exponential lifetime (its option `take_mean_s`). The
same worlds, seeds and competitors serve both arms. A release is *seen* by the first
poll at or after it while one of its slots is still open; its detection delay is that
poll's time minus the release time (never seen = missed, counted as an infinite
delay, so a median can only improve by seeing more, sooner).

- **fixed**: one poll every `3600 / --per-hour` seconds.
- **hub** (the default, what users run): the shipped `WatchHub` on a `ManualClock`, one
  booking waiting throughout, its `ReleasePredictor` trained on `--train-weeks` of
  fixed-interval scans, then learning online from its own scans (every scan is observed,
  the forecast refreshed hourly); on days without a forecast window it explores the span
  `ReleasePredictor.candidates` names (its defaults: at most a quarter of the day's
  allowance while no window is forecast). Its daily allowance is set to the fixed poller's
  total (`daily_share`), the portal capped at `--cap` an hour. It has no separate daily
  budget, so it may spend a little more or less than the baseline.
- **--engine planner**: the same predictor and `PollPlanner` in a loop here (no
  exploring: the first revision's watcher), every poll
  passing two `RequestBudget`s — the fixed poller's daily total (never more than the
  baseline in any 24 h) and the portal's hourly cap.
- **oracle** (a reference, not a watcher): one poll at the exact second of every window
  release, the rest of the fixed poller's budget uniform.

Each seed is run at `--phases` start phases spread over one fixed interval (both arms
start at each), pooled: the per-release median sits where the window releases (about
40 % of events, seen within seconds by a watcher) give way to cancellations at random
times, so which few cancellations a schedule catches — the polls' phase against them —
moves one run's median by a factor of two or more (one phase once read 0.17 for the
planner where its five-phase pool reads 0.30).

By default it sweeps the competitors' mean slot lifetime (`--take-means`, the first
being the sandbox's default `take_mean_s`, 30 s) and prints one row per lifetime:
per-release median delay of both arms and their ratio (target <= 0.2), the oracle's
ratio, the per-slot ratio, slots won against competitors (a slot a poll saw before its
competitor took it; target ratio >= 1.5) and requests spent, then a "why" line per
lifetime: D = 0.2 x the fixed median, the shares of window and cancellation events the
watcher saw within D against the share of cancellations a median <= D needs, and each
schedule's coverage within D (the chance an event at a random time is seen within D:
requests x D / time for polls at least D apart, whatever the schedule). `--take-mean X` prints
the per-seed details of one lifetime instead. `--chart FILE` writes a PNG (needs
matplotlib) for the last lifetime. Simulated time only: seconds of CPU a lifetime.

    python benchmarks/predictor_backtest.py [--seeds 10] [--first-seed 1] [--phases 4]
        [--weeks 4] [--train-weeks 4] [--per-hour 12] [--cap 120]
        [--take-means 30,60,120,300,900 | --take-mean 900] [--pad 300] [--dense-share 0.6]
        [--follow 300] [--engine hub|planner] [--chart FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import math
import statistics
import time
from array import array
from dataclasses import dataclass, field
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
from portwright.sandbox._chaos import ChaosState
from portwright.sandbox.consulate._calendar import SlotCalendar
from portwright.sandbox.consulate._portal import DEFAULT_OPTIONS
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
SANDBOX_TAKE_MEAN = float(DEFAULT_OPTIONS["take_mean_s"])  # the sandbox's competitors


@dataclass(frozen=True)
class World:
    releases: list[SlotRelease]
    ends: list[float]  # when each release's last slot is taken
    slots: list[tuple[float, float]]  # (released, taken) of every slot, by release time


def build_world(seed: int, days: int, take_mean: float) -> World:
    """The sandbox consulate's own calendar (`SlotCalendar` on its release model, speed 1,
    its seeded draws): releases as `generate_releases` schedules them, each slot taken by a
    competitor after the sandbox's exponential lifetime of mean `take_mean` (its option
    `take_mean_s`, 30 s by default in the sandbox)."""
    pattern = ReleasePattern(utc_offset_s=OFFSET)
    options = {
        "take_mean_s": take_mean,
        "release_model": {"sim_start": START, "speed": 1.0, "seed": seed,
                          "pattern": {"utc_offset_s": OFFSET}},
    }  # fmt: skip
    chaos = ChaosState("consulate", seed)
    calendar = SlotCalendar(chaos.draw, options, clock=lambda: 0.0, started_at=0.0, seed=seed)
    horizon = days * DAY_S
    scheduled = calendar.schedule("ACC", "tourist", horizon - 1e-6)
    releases = generate_releases(
        "ACC", "tourist", pattern, seed=seed, start=START, end=START + horizon
    )
    if [(round(r.at - START, 3), r.slots) for r in releases] != [
        (round(r.at, 3), len(r.slot_ids)) for r in scheduled
    ]:
        raise RuntimeError("the sandbox calendar and the release model disagree")
    ends, slots = [], []
    for r in scheduled:
        taken = []
        for slot_id in r.slot_ids:
            slot = calendar.slot(slot_id, r.at)
            assert slot is not None
            taken.append(START + slot.taken_at)
        ends.append(max(taken))
        slots += [(START + r.at, t) for t in taken]
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
        dense_share=args.dense_share,
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


def oracle_polls(world: World, start: float, end: float, budget: int) -> list[float]:
    """A bound, not a watcher: one poll at the very second of every window release (known
    in advance), the rest of the same budget spread uniformly. No schedule that cannot
    foresee cancellations does much better per release event."""
    exact = [r.at for r in world.releases if r.kind == "window" and start <= r.at < end]
    step = (end - start) / max(budget - len(exact), 1)
    uniform = [start + k * step for k in range(budget - len(exact))]
    return sorted(exact + uniform)


@dataclass
class Pooled:
    fixed: list[float]
    watch: list[float]
    oracle: list[float]
    kinds: list[str]
    sizes: list[int]
    spent: list[int]
    won: list[int]
    released: int
    gaps: tuple[array[float], array[float], array[float]] = field(
        default_factory=lambda: (array("d"), array("d"), array("d"))
    )  # time between successive polls: fixed, watcher, oracle
    span: float = 0.0  # seconds compared, summed over seeds and phases


def run(args: argparse.Namespace, take_mean: float, verbose: bool) -> Pooled:
    horizon = 20 * take_mean
    days = (args.train_weeks + args.weeks) * 7
    test_start = START + args.train_weeks * 7 * DAY_S
    end = START + days * DAY_S
    p = Pooled([], [], [], [], [], [0, 0], [0, 0], 0)
    if verbose:
        print(
            f"{'seed':>4} {'releases':>8} | {'fixed median':>12} {'p90':>8} {'seen':>5} "
            f"{'reqs':>6} | {'watcher median':>14} {'p90':>8} {'seen':>5} {'reqs':>6} | ratio"
        )
    interval = 3600 / args.per_hour
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        gen = time.perf_counter()
        world = build_world(seed, days, take_mean)
        gen = time.perf_counter() - gen
        fd, wd, n_fixed, n_watch = [], [], 0, 0
        for k in range(args.phases):  # the pollers' phase against the releases: spread
            begin = test_start + k * interval / args.phases
            fixed = fixed_polls(begin, end, interval)
            polls = hub_polls if args.engine == "hub" else watcher_polls
            watch = polls(world, begin, end, args, horizon)
            fd += delays(world, fixed, begin)
            wd += delays(world, watch, begin)
            oracle = oracle_polls(world, begin, end, len(fixed))
            p.oracle += delays(world, oracle, begin)
            for arm, polled in zip(p.gaps, (fixed, watch, oracle), strict=True):
                arm.extend(b - a for a, b in itertools.pairwise(polled))
            p.span += end - begin
            p.kinds += [r.kind for r in world.releases if r.at >= begin]
            p.sizes += [r.slots for r in world.releases if r.at >= begin]
            n_fixed += len(fixed)
            n_watch += len(watch)
            p.won[0] += slots_won(world, fixed, begin)
            p.won[1] += slots_won(world, watch, begin)
            p.released += sum(1 for at, _ in world.slots if at >= begin)
        p.fixed += fd
        p.watch += wd
        p.spent[0] += n_fixed
        p.spent[1] += n_watch
        if verbose:
            (fm, fp, fs), (wm, wp, ws) = summary(fd), summary(wd)
            print(
                f"{seed:>4} {len(fd):>8} | {fmt(fm):>12} {fmt(fp):>8} {fs:>5} {n_fixed:>6} | "
                f"{fmt(wm):>14} {fmt(wp):>8} {ws:>5} {n_watch:>6} | {ratio(wm, fm)}"
                f"   ({days} days generated in {gen * 1000:.1f} ms)"
            )
    return p


def explain(take_mean: float, p: Pooled) -> str:
    """Why the per-release median lands where it does at this lifetime (one line)."""
    fm = summary(p.fixed)[0]
    if not math.isfinite(fm):
        return f"{take_mean:>8.0f} | fixed median missed: no D"
    d = 0.2 * fm
    win = [x for x, k in zip(p.watch, p.kinds, strict=True) if k == "window"]
    can = [x for x, k in zip(p.watch, p.kinds, strict=True) if k == "cancellation"]
    win_in, can_in = sum(x <= d for x in win), sum(x <= d for x in can)
    needed = max(0.0, 0.5 * len(p.watch) - win_in) / max(len(can), 1)
    cover = [sum(min(g, d) for g in arm) / p.span for arm in p.gaps]
    return (
        f"{take_mean:>8.0f} | D {d:4.0f} s | windows within D {win_in / max(len(win), 1):6.1%} "
        f"of {len(win)}, cancellations {can_in / max(len(can), 1):5.1%} of {len(can)} "
        f"(needed {needed:5.1%}) | coverage fixed {cover[0]:5.1%} watcher {cover[1]:5.1%} "
        f"oracle {cover[2]:5.1%}"
    )


def ratio(a: float, b: float) -> str:
    if math.isfinite(a) and math.isfinite(b) and b > 0:
        return f"{a / b:5.2f}"
    return "  n/a"


def per_slot(ds: list[float], sizes: list[int]) -> list[float]:
    return [d for d, n in zip(ds, sizes, strict=True) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1, help="seeds first-seed.. (held-out runs)")
    ap.add_argument(
        "--phases",
        type=int,
        default=4,
        help="start phases per seed, spread over one fixed interval (the median per release "
        "depends on where the polls fall against random cancellations; pooled over phases)",
    )
    ap.add_argument("--weeks", type=int, default=4, help="weeks compared")
    ap.add_argument("--train-weeks", type=int, default=4, help="weeks of history first")
    ap.add_argument("--per-hour", type=float, default=12.0, help="fixed polls per hour")
    ap.add_argument("--cap", type=int, default=120, help="portal cap, requests per hour")
    ap.add_argument(
        "--take-mean",
        type=float,
        default=None,
        help="one mean slot lifetime, s (details per seed); default: the sweep --take-means",
    )
    ap.add_argument(
        "--take-means",
        default=f"{SANDBOX_TAKE_MEAN:g},60,120,300,900",
        help="mean slot lifetimes swept, s (the first is the sandbox's default take_mean_s)",
    )
    ap.add_argument("--pad", type=float, default=300.0, help="padding around windows, s")
    ap.add_argument("--follow", type=float, default=300.0, help="dense after new slots, s")
    ap.add_argument(
        "--engine",
        choices=("hub", "planner"),
        default="hub",
        help="hub: the shipped WatchHub; planner: the planner + both budgets in a loop here",
    )
    ap.add_argument("--dense-share", type=float, default=0.6, help="budget share for windows")
    ap.add_argument(
        "--chart", type=Path, default=None, help="write a PNG chart here (needs matplotlib)"
    )
    args = ap.parse_args()
    if args.seeds < 1 or args.weeks < 1 or args.train_weeks < 0 or args.per_hour <= 0:
        ap.error("--seeds and --weeks must be >= 1, --train-weeks >= 0, --per-hour > 0")
    if args.phases < 1:
        ap.error("--phases must be >= 1")
    try:
        means = [float(x) for x in args.take_means.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--take-means must be numbers separated by commas, got {args.take_means!r}")
    if args.take_mean is not None:
        means = [args.take_mean]
    if not means or any(m <= 0 for m in means):
        ap.error("mean slot lifetimes must be > 0")
    print(
        f"{args.seeds} seeds (from {args.first_seed}) x {args.phases} phases x {args.weeks} "
        f"weeks compared after {args.train_weeks} weeks of history; "
        f"fixed = every {3600 / args.per_hour:.0f} s; cap {args.cap}/h; "
        f"engine {args.engine}; competitors: the sandbox calendar's (exponential slot lifetime)"
    )
    began = time.perf_counter()
    if args.take_mean is not None:
        p = run(args, args.take_mean, verbose=True)
        details(args, p)
    else:
        sweep(args, means)
    print(f"wall time {time.perf_counter() - began:.1f} s")


def sweep(args: argparse.Namespace, means: list[float]) -> None:
    print(
        f"{'lifetime':>8} | {'median delay per release':^32} | {'per slot':^8} | "
        f"{'slots won':^30} | {'reqs':>5}"
    )
    print(
        f"{'mean, s':>8} | {'fixed':>7} {'watcher':>8} {'ratio':>6} {'oracle':>7} | "
        f"{'ratio':>8} | {'fixed':>6} {'watcher':>7} {'ratio':>6} {'ceiling':>7} | {'ratio':>5}"
    )
    won: list[tuple[float, float, float]] = []  # (lifetime, ratio, ceiling)
    why: list[str] = []
    last: tuple[float, list[float], list[float], Pooled] | None = None
    for take_mean in means:
        p = run(args, take_mean, verbose=False)
        won.append((take_mean, p.won[1] / max(p.won[0], 1), p.released / max(p.won[0], 1)))
        fm, wm, om = summary(p.fixed)[0], summary(p.watch)[0], summary(p.oracle)[0]
        fs, ws = summary(per_slot(p.fixed, p.sizes))[0], summary(per_slot(p.watch, p.sizes))[0]
        print(
            f"{take_mean:>8.0f} | {fmt(fm)} {fmt(wm):>8} {ratio(wm, fm):>6} {ratio(om, fm):>7} | "
            f"{ratio(ws, fs):>8} | {p.won[0]:>6} {p.won[1]:>7} {p.won[1] / max(p.won[0], 1):>6.2f}"
            f" {p.released / max(p.won[0], 1):>7.2f} | {p.spent[1] / p.spent[0]:>5.2f}"
        )
        why.append(explain(take_mean, p))
        if args.chart is not None and take_mean == means[-1]:
            last = (take_mean, per_slot(p.fixed, p.sizes), per_slot(p.watch, p.sizes), p)
    print(
        "why (D = 0.2 x the fixed median; the watcher's median is <= D when half the events "
        "are seen within D): events seen within D, and coverage = the share of time from "
        "which the next poll comes within D (an event at a random time, e.g. a cancellation "
        "starting a burst, is seen within D with about that chance; survival ignored)"
    )
    for line in why:
        print(line)
    if args.chart is not None and last is not None:
        chart(args, *last, won)
        print(f"chart written to {args.chart}")
    print(
        "targets: median delay ratio per release <= 0.2; slots won ratio >= 1.5. oracle = one "
        "poll at each window release's exact second (known in advance), the rest uniform: what "
        "predicting windows perfectly does per release event at this budget. ceiling = slots "
        "released / fixed won: no watcher's ratio can exceed it. missed = over half the "
        "releases were never seen, so the median is undefined."
    )


def details(args: argparse.Namespace, p: Pooled) -> None:
    (fm, fp, fs), (wm, wp, ws) = summary(p.fixed), summary(p.watch)
    print(
        f"pooled: {len(p.fixed)} releases; fixed median {fmt(fm).strip()} p90 "
        f"{fmt(fp).strip()} seen {fs}; watcher median {fmt(wm).strip()} p90 "
        f"{fmt(wp).strip()} seen {ws}; oracle median {fmt(summary(p.oracle)[0]).strip()}"
    )
    for kind in ("window", "cancellation"):
        f_k = [d for d, k in zip(p.fixed, p.kinds, strict=True) if k == kind]
        w_k = [d for d, k in zip(p.watch, p.kinds, strict=True) if k == kind]
        print(
            f"  {kind:<12} {len(f_k):>4}: fixed median {fmt(summary(f_k)[0]).strip()}, "
            f"watcher median {fmt(summary(w_k)[0]).strip()}"
        )
    f_s, w_s = per_slot(p.fixed, p.sizes), per_slot(p.watch, p.sizes)
    print(
        f"  per slot     {len(f_s):>4}: fixed median {fmt(summary(f_s)[0]).strip()}, "
        f"watcher median {fmt(summary(w_s)[0]).strip()} "
        f"(ratio {ratio(summary(w_s)[0], summary(f_s)[0]).strip()})"
    )
    print(
        f"requests: fixed {p.spent[0]}, watcher {p.spent[1]} (ratio {p.spent[1] / p.spent[0]:.3f})"
    )
    print(
        f"slots won against competitors (of {p.released} released): fixed {p.won[0]}, "
        f"watcher {p.won[1]} (ratio {p.won[1] / max(p.won[0], 1):.2f}, target >= 1.5)"
    )
    print(
        f"median delay ratio watcher/fixed, per release: {ratio(wm, fm).strip()} (target <= 0.2);"
        f" oracle bound {ratio(summary(p.oracle)[0], fm).strip()}"
    )
    print(f"seen ratio watcher/fixed: {ws / max(fs, 1):.2f}")
    if args.chart is not None:
        chart(args, args.take_mean, f_s, w_s, p)
        print(f"chart written to {args.chart}")


def chart(
    args: argparse.Namespace,
    take_mean: float,
    fixed: list[float],
    watch: list[float],
    p: Pooled,
    won: list[tuple[float, float, float]] | None = None,
) -> None:
    """Per-slot detection delay (share seen within t) at one lifetime; slots won, fixed vs
    watcher there, or (a sweep) the slots-won ratio per lifetime with its ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, bars) = plt.subplots(
        1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.8, 1.2]}, dpi=100
    )
    limit = 2 * 3600 / args.per_hour  # two fixed intervals
    for label, ds, colour in (
        ("fixed interval", fixed, "#888888"),
        (
            "hub (predicted windows; explores without)"
            if args.engine == "hub"
            else "planner loop (predicted windows)",
            watch,
            "#1f6fb4",
        ),
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
        f"({p.spent[1] / p.spent[0]:.2f}x), slot lifetime {take_mean:.0f} s",
        fontsize=9,
    )
    if won:
        names = [f"{m:g}" for m, _, _ in won]
        bars.bar(names, [r for _, r, _ in won], color="#1f6fb4", label="watcher / fixed")
        for name, (_, r, c) in zip(names, won, strict=True):
            bars.annotate(f"{r:.2f}\n(max {c:.1f})", (name, r), ha="center", va="bottom",
                          fontsize=7)  # fmt: skip
        bars.axhline(1.5, color="#c0392b", linewidth=0.8, linestyle="--", label="target 1.5")
        bars.set_xlabel("mean slot lifetime, s (30 = sandbox default)")
        bars.set_ylim(0, max(3.0, max(r for _, r, _ in won) + 0.6))
        bars.legend(loc="upper right", fontsize=7)
        bars.set_title("slots won, watcher / fixed (max = released / fixed won)", fontsize=9)
    else:
        bars.bar(["fixed", args.engine], p.won, color=["#888888", "#1f6fb4"])
        bars.axhline(p.released, color="black", linewidth=0.8, linestyle="--")
        bars.set_title(
            f"slots won of {p.released} (ratio {p.won[1] / max(p.won[0], 1):.2f})", fontsize=9
        )
    fig.tight_layout()
    args.chart.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.chart)
    plt.close(fig)


if __name__ == "__main__":
    main()
