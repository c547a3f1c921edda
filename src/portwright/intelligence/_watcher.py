"""Watch jobs: one per (portal, center, visa type), shared by the bookings waiting on it.

A `WatchHub` keeps one watch job per key that has waiting bookings. Each job polls the
portal through the caller's `scan` densely inside the key's predicted windows and sparsely
outside (`PollPlanner`), densely for a while after new slots were seen (cancellations come
in bursts). On a day with no forecast window it *explores*: it polls densely the span the
predictor names as likeliest (`ReleasePredictor.candidates`, `explore_bins` bins scoring at
least `explore_min`), with at most `explore_share` of the day's allowance when no window is
forecast at all, so releases too short-lived for sparse polls to catch are seen and learned
from, and the job wins their slots meanwhile. It never polls:

- more than `per_hour` requests to a portal in any hour (`RequestBudget`, shared by all the
  portal's keys; the planner only proposes, the budget decides);
- during a portal cooldown: a scan answered with `retry_after` (a 429) cools the whole
  portal down, and `cooldown_until(portal)` (e.g. the store's portal cooldowns) is honoured;
  a scan that raises backs the portal off for `error_backoff_s`.

Every scan feeds the job's predictor (`ReleasePredictor`, keyed `portal/center/visa`; seed
it with stored history via `predictor_from_runs`) and `on_scan` (e.g. to store it as an
observation). A slot never handed before goes to the waiting bookings in priority order
(highest priority first, then first come): `hand_off(booking, key, slot)` returning True
means that booking took it and stops waiting; False means it is gone (cancelled, already
served) and the next one is offered the same slot. So a slot reaches at most one booking.

Time comes from an injected `WatchClock`: the system clock in production, a manual clock
(`portwright.testing.ManualClock`) in tests and simulations. A scan may carry the portal's
own clock (`ScanResult.at`); the predictor learns in portal time and the job shifts the
windows by the latest observed difference.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from portwright.intelligence._model import (
    DAY_S,
    EXPLORE_BINS,
    EXPLORE_MIN,
    PredictorConfig,
    ReleasePredictor,
    Window,
)
from portwright.intelligence._watch import PollPlanner, RequestBudget

__all__ = ["ScanResult", "SystemClock", "WatchClock", "WatchHub", "WatchKey"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class WatchKey:
    portal: str
    center: str
    visa_type: str

    def __str__(self) -> str:
        return f"{self.portal}/{self.center}/{self.visa_type}"


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one request to the portal showed: open slot ids, or a 429's Retry-After."""

    slots: tuple[str, ...] = ()
    retry_after: float | None = None
    at: float | None = None  # the portal's clock, when it shows one


class WatchClock(Protocol):
    def now(self) -> float: ...
    async def sleep_until(self, when: float) -> None: ...


class SystemClock:
    """Wall time (POSIX seconds) and asyncio sleeps."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.time()))


Scan = Callable[[WatchKey], Awaitable[ScanResult]]
HandOff = Callable[[str, WatchKey, str], Awaitable[bool]]
OnScan = Callable[[WatchKey, float, ScanResult], Awaitable[None]]


@dataclass
class _Waiter:
    booking_id: str
    priority: int
    seq: int


@dataclass
class _Job:
    key: WatchKey
    waiters: dict[str, _Waiter] = field(default_factory=dict)
    last_poll: float | None = None
    follow_until: float = -math.inf
    last_ids: frozenset[str] = frozenset()
    handed: set[str] = field(default_factory=set)
    windows: tuple[Window, ...] = ()
    forecast_at: float = -math.inf
    exploring: bool = False  # the windows are `candidates`, not a forecast
    offset: float = 0.0  # portal clock minus ours, as last seen
    last_seen_at: float = -math.inf  # latest portal time fed to the predictor


class WatchHub:
    """Shared watch jobs under per-portal request budgets; see the module docstring."""

    def __init__(
        self,
        *,
        scan: Scan,
        hand_off: HandOff,
        per_hour: int | Mapping[str, int],
        clock: WatchClock | None = None,
        predictor: ReleasePredictor | None = None,
        on_scan: OnScan | None = None,
        cooldown_until: Callable[[str], float | None] | None = None,
        daily_share: float = 0.25,
        dense_share: float = 0.6,
        pad_s: float = 300.0,
        follow_s: float = 900.0,
        refresh_s: float = 3600.0,
        error_backoff_s: float = 60.0,
        explore_share: float = 0.25,
        explore_bins: int = EXPLORE_BINS,
        explore_min: float = EXPLORE_MIN,
    ) -> None:
        if not 0.0 < daily_share <= 1.0:
            raise ValueError(f"daily_share must be in (0, 1], got {daily_share}")
        if follow_s < 0 or refresh_s <= 0:
            raise ValueError("follow_s must be >= 0 and refresh_s > 0")
        self._scan, self._hand_off, self._on_scan = scan, hand_off, on_scan
        self._per_hour = per_hour
        self.clock: WatchClock = clock or SystemClock()
        self.predictor = predictor or ReleasePredictor(PredictorConfig())
        self._cooldown_until = cooldown_until
        if not 0.0 < dense_share < 1.0:
            raise ValueError(f"dense_share must be in (0, 1), got {dense_share}")
        self._daily_share, self._pad_s = daily_share, pad_s
        self._dense_share = dense_share
        self._follow_s, self._refresh_s = follow_s, refresh_s
        self._error_backoff_s = error_backoff_s
        if not 0.0 <= explore_share < 1.0:
            raise ValueError(f"explore_share must be in [0, 1), got {explore_share}")
        if explore_bins < 1 or not 0.0 < explore_min < 1.0:
            raise ValueError("explore_bins must be >= 1 and explore_min in (0, 1)")
        self._explore_share, self._explore_bins = explore_share, explore_bins
        self._explore_min = explore_min
        self.failures = 0
        self._jobs: dict[WatchKey, _Job] = {}
        self._budgets: dict[str, RequestBudget] = {}
        self._cooldowns: dict[str, float] = {}
        self._seq = 0
        self._changed = asyncio.Event()

    # -- bookings --------------------------------------------------------------------------

    def wait(self, key: WatchKey, booking_id: str, *, priority: int = 0) -> None:
        """`booking_id` waits for a slot of `key` (higher `priority` is served first)."""
        job = self._jobs.get(key)
        if job is None:
            job = self._jobs[key] = _Job(key)
        self._seq += 1
        job.waiters.setdefault(booking_id, _Waiter(booking_id, priority, self._seq))
        self._changed.set()

    def cancel(self, booking_id: str) -> None:
        """The booking stops waiting (wherever it waited)."""
        for job in self._jobs.values():
            job.waiters.pop(booking_id, None)

    def waiting(self, key: WatchKey) -> list[str]:
        """The bookings waiting on `key`, in the order they will be offered a slot."""
        job = self._jobs.get(key)
        if job is None:
            return []
        return [w.booking_id for w in sorted(job.waiters.values(), key=_order)]

    def windows(self, key: WatchKey) -> tuple[Window, ...]:
        """The predicted windows the key's job plans with (in the hub's clock)."""
        job = self._jobs.get(key)
        return () if job is None else job.windows

    # -- running ---------------------------------------------------------------------------

    def _budget(self, portal: str) -> RequestBudget:
        budget = self._budgets.get(portal)
        if budget is None:
            limit = (
                self._per_hour
                if isinstance(self._per_hour, int)
                else int(self._per_hour.get(portal, 0))
            )
            if limit < 1:
                raise ValueError(f"no request budget for portal {portal!r}")
            budget = self._budgets[portal] = RequestBudget(limit, 3600.0)
        return budget

    def _planner(self, portal: str, active: int, exploring: bool = False) -> PollPlanner:
        per_hour = max(1, self._budget(portal).limit // max(1, active))
        per_day = max(1, int(per_hour * 24 * self._daily_share))
        share = min(self._dense_share, self._explore_share) if exploring else self._dense_share
        return PollPlanner(per_day=per_day, per_hour=per_hour, pad_s=self._pad_s, dense_share=share)

    def _cooled_until(self, portal: str) -> float:
        outside = self._cooldown_until(portal) if self._cooldown_until else None
        return max(self._cooldowns.get(portal, -math.inf), outside or -math.inf)

    def next_due(self, now: float) -> tuple[float, WatchKey] | None:
        """When the next poll is due, and for which key (None: nobody is waiting)."""
        active = [j for j in self._jobs.values() if j.waiters]
        per_portal: dict[str, int] = {}
        for job in active:
            per_portal[job.key.portal] = per_portal.get(job.key.portal, 0) + 1
        best: tuple[float, WatchKey] | None = None
        for job in active:
            portal = job.key.portal
            if job.last_poll is None:
                planned = now
            else:
                planner = self._planner(portal, per_portal[portal], job.exploring)
                planned = planner.next_poll(job.windows, job.last_poll, job.follow_until)
            due = max(planned, now, self._budget(portal).next_allowed(now))
            due = max(due, self._cooled_until(portal))
            if best is None or (due, job.key) < best:
                best = (due, job.key)
        return best

    async def step(self) -> bool:
        """Sleep until the next due poll and make it. False when nobody is waiting."""
        due = self.next_due(self.clock.now())
        if due is None:
            return False
        when, key = due
        await self.clock.sleep_until(when)
        job, now = self._jobs[key], self.clock.now()
        if not job.waiters or now < self._cooled_until(key.portal):
            return True
        if not self._budget(key.portal).try_acquire(now):
            return True  # another key of the portal took the room: plan again
        job.last_poll = now
        try:
            result = await self._scan(key)
        except Exception:  # a failed poll is not a reason to stop watching: back off
            log.warning("scan of %s failed; backing off %.0f s", key, self._error_backoff_s,
                        exc_info=True)  # fmt: skip
            self.failures += 1
            result = ScanResult(retry_after=self._error_backoff_s)
        if result.retry_after is not None:
            self._cooldowns[key.portal] = now + max(0.0, result.retry_after)
            return True
        await self._seen(job, now, result)
        return True

    async def run(self, until: float | None = None) -> None:
        """Poll until `until` (the clock's time), or forever; idle while nobody waits."""
        while until is None or self.clock.now() < until:
            due = self.next_due(self.clock.now())
            if due is None:
                if until is not None:
                    await self.clock.sleep_until(until)
                    return
                self._changed.clear()
                await self._changed.wait()
                continue
            if until is not None and due[0] >= until:
                await self.clock.sleep_until(until)
                return
            await self.step()

    async def _seen(self, job: _Job, now: float, result: ScanResult) -> None:
        at = now if result.at is None else result.at
        ids = frozenset(result.slots)
        fresh = ids - job.last_ids
        if at >= job.last_seen_at:
            self.predictor.observe(str(job.key), at, len(ids), len(fresh))
            job.last_seen_at, job.offset = at, at - now
        if fresh:
            job.follow_until = now + self._follow_s
        job.last_ids = ids
        try:  # slots first: competitors take them within seconds; the record can wait
            await self._offer(job, result.slots)
        finally:
            if self._on_scan is not None:
                await self._on_scan(job.key, at, result)
        if now - job.forecast_at >= self._refresh_s:
            # two days: the planner looks a day ahead of every poll until the next refresh,
            # which comes with the first scan an hour later, at most a day later
            horizon = 2 * DAY_S + 2 * self._pad_s
            forecast = self.predictor.forecast(str(job.key), at, horizon).windows
            explored: tuple[Window, ...] = ()
            if self._explore_share > 0:
                # days without a forecast window: look where a window is likeliest, so
                # short-lived releases, which sparse polls rarely catch, are seen and
                # learned from (every scan feeds the predictor)
                explored = self.predictor.candidates(
                    str(job.key), at, horizon, span_bins=self._explore_bins,
                    min_confidence=self._explore_min, exclude=forecast,
                )  # fmt: skip
            job.exploring = bool(explored) and not forecast
            job.windows = tuple(
                Window(w.start - job.offset, w.end - job.offset, w.confidence, w.chance)
                for w in sorted(forecast + explored, key=lambda w: w.start)
            )
            job.forecast_at = now

    async def _offer(self, job: _Job, slots: tuple[str, ...]) -> None:
        """Each slot never handed before to the waiting bookings in priority order."""
        for slot in slots:
            if slot in job.handed:
                continue
            for waiter in sorted(job.waiters.values(), key=_order):
                del job.waiters[waiter.booking_id]
                if await self._hand_off(waiter.booking_id, job.key, slot):
                    job.handed.add(slot)
                    break
            if not job.waiters:
                break


def _order(w: _Waiter) -> tuple[int, int]:
    return (-w.priority, w.seq)
