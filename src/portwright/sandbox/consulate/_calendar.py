"""The consulate's slot calendar: releases in windows with jitter, slots taken by others.

Nothing runs in the background. Per (center, visa) pair, release k happens at
`base_k + jitter_k` seconds after the calendar started, where `base_k` grows
by `release_every_s` per release and `jitter_k` is uniform in
±`release_jitter_s`; each release adds `release_size` slots (the initial batch
of `initial_slots` is release 0, at time 0). A released slot is taken by a
competing user after an exponential lifetime of mean `take_mean_s`. Every
random number comes from the world's seeded `draw(key)` with a key that is
drawn exactly once, so the schedule depends on the seed only, never on the
order or timing of requests. Options are read when a release is generated, so
changing one at runtime shapes later releases.

With option `release_model` set (a mapping), releases follow
`portwright.sandbox.consulate.releases` instead: the calendar keeps a simulated
clock, `sim_start` (POSIX seconds, default 2030-01-07 00:00 UTC) plus `speed`
simulated seconds per elapsed second (default 1), and each pair releases what its
`ReleasePattern` (the mapping's `patterns["CENTER/visa"]`, else `pattern`, else the
defaults; keyword arguments of `ReleasePattern`) schedules for that simulated time,
seeded by `seed` (default: the world's seed). No initial batch. `take_mean_s` stays
in elapsed seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from portwright.sandbox.consulate.releases import ReleaseFeed, ReleasePattern

__all__ = ["SIM_START", "Release", "Slot", "SlotCalendar"]

SIM_START = 1893974400.0  # 2030-01-07 00:00 UTC, a Monday: the simulated clock's default


@dataclass(slots=True)
class Slot:
    """One appointment slot. Times are seconds since the calendar started."""

    id: str
    center: str
    visa: str
    release: int
    released_at: float
    taken_at: float
    when: datetime
    holder: str | None = None
    returns: int = 0

    def is_open(self, t: float) -> bool:
        return self.holder is None and self.released_at <= t < self.taken_at

    @property
    def when_text(self) -> str:
        return self.when.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class Release:
    """A release window: when it happened and which slots it released."""

    at: float
    slot_ids: tuple[str, ...]


@dataclass
class _Pair:
    next_index: int = 1
    next_base: float = 0.0
    next_at: float | None = None
    live: list[Slot] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    feed: ReleaseFeed | None = None


class SlotCalendar:
    """Open slots per (center, visa), computed lazily from elapsed time."""

    def __init__(
        self,
        draw: Callable[[str], float],
        options: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        started_at: float | None = None,
        seed: int = 0,
    ) -> None:
        self._draw = draw
        self._options = options
        self._clock = clock
        self.started_at = clock() if started_at is None else started_at
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._slots: dict[str, Slot] = {}
        self._seed = seed

    # -- the simulated clock (release model) ---------------------------------------------

    @property
    def model(self) -> Mapping[str, Any] | None:
        model = self._options.get("release_model")
        return model if isinstance(model, Mapping) else None

    def sim_time(self, t: float | None = None) -> float:
        """Simulated POSIX time at elapsed `t` (now by default); elapsed time without a model."""
        t = self.elapsed() if t is None else t
        model = self.model
        if model is None:
            return t
        return float(model.get("sim_start", SIM_START)) + t * float(model.get("speed", 1.0))

    def _elapsed_at(self, sim: float) -> float:
        model = self.model or {}
        return (sim - float(model.get("sim_start", SIM_START))) / float(model.get("speed", 1.0))

    def _feed(self, center: str, visa: str) -> ReleaseFeed:
        model = self.model or {}
        spec = dict(
            (model.get("patterns") or {}).get(f"{center}/{visa}") or model.get("pattern") or {}
        )
        for name in ("weekdays",):
            if name in spec:
                spec[name] = frozenset(int(d) for d in spec[name])
        if "holidays" in spec:
            spec["holidays"] = frozenset(date.fromisoformat(str(d)) for d in spec["holidays"])
        if "drift_from" in spec:
            spec["drift_from"] = date.fromisoformat(str(spec["drift_from"]))
        pattern = ReleasePattern(**spec)
        seed = int(model.get("seed", self._seed))
        return ReleaseFeed(center, visa, pattern, seed=seed, start=self.sim_time(0.0))

    # -- reading -------------------------------------------------------------------------

    def elapsed(self) -> float:
        return self._clock() - self.started_at

    def open_slots(self, center: str, visa: str, t: float | None = None) -> list[Slot]:
        """Slots open now (or at elapsed time `t`), earliest appointment first."""
        t = self.elapsed() if t is None else t
        pair = self._advance(center, visa, t)
        pair.live = [s for s in pair.live if s.holder is not None or t < s.taken_at]
        return sorted((s for s in pair.live if s.is_open(t)), key=lambda s: (s.when, s.id))

    def slot(self, slot_id: str, t: float | None = None) -> Slot | None:
        """A released slot by id (open or not); None if unknown or not released yet."""
        t = self.elapsed() if t is None else t
        for center, visa in list(self._pairs):
            self._advance(center, visa, t)
        slot = self._slots.get(slot_id)
        if slot is None or slot.released_at > t:
            return None
        return slot

    def schedule(self, center: str, visa: str, until_s: float) -> list[Release]:
        """Every release of a pair up to `until_s` seconds after start (generating ahead)."""
        pair = self._advance(center, visa, until_s)
        return [r for r in pair.releases if r.at <= until_s]

    # -- holding -------------------------------------------------------------------------

    def hold(self, slot_id: str, holder: str) -> None:
        self._slots[slot_id].holder = holder

    def give_back(self, slot_id: str, at: float) -> None:
        """A hold on the slot ended at elapsed time `at`: it is open again, until taken."""
        slot = self._slots[slot_id]
        slot.holder = None
        slot.returns += 1
        slot.taken_at = at + self._lifetime(f"{slot.id}|return{slot.returns}")

    def book(self, slot_id: str) -> None:
        slot = self._slots[slot_id]
        slot.holder = slot.holder or "booked"
        pair = self._pairs[(slot.center, slot.visa)]
        pair.live = [s for s in pair.live if s.id != slot_id]

    # -- generation ----------------------------------------------------------------------

    def _opt(self, name: str, default: float) -> float:
        return float(self._options.get(name, default))

    def _advance(self, center: str, visa: str, t: float) -> _Pair:
        key = (center, visa)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = _Pair()
            if self.model is not None:
                pair.feed = self._feed(center, visa)
            else:
                initial = int(self._opt("initial_slots", 10))
                self._release(center, visa, pair, k=0, at=0.0, size=initial)
        if pair.feed is not None:
            for release in pair.feed.due(self.sim_time(t)):
                at = max(0.0, self._elapsed_at(release.at))
                self._release(center, visa, pair, k=pair.next_index, at=at, size=release.slots)
                pair.next_index += 1
            return pair
        while True:
            if pair.next_at is None:
                pair.next_base += self._opt("release_every_s", 15.0)
                spread = self._opt("release_jitter_s", 3.0)
                jitter = (2 * self._draw(f"jitter|{center}|{visa}|{pair.next_index}") - 1) * spread
                pair.next_at = max(0.0, pair.next_base + jitter)
            if pair.next_at > t:
                return pair
            size = int(self._opt("release_size", 6))
            self._release(center, visa, pair, k=pair.next_index, at=pair.next_at, size=size)
            pair.next_index += 1
            pair.next_at = None

    def _release(
        self, center: str, visa: str, pair: _Pair, *, k: int, at: float, size: int
    ) -> None:
        first = datetime.fromisoformat(str(self._options.get("first_date", "2030-01-07")))
        ids = []
        for j in range(size):
            slot_id = f"{center}-{visa}-{k:03d}-{j}"
            day = int(self._draw(f"day|{slot_id}") * 90)
            quarter = int(self._draw(f"time|{slot_id}") * 36)
            when = first + timedelta(days=day, hours=8, minutes=15 * quarter)
            slot = Slot(slot_id, center, visa, k, at, at + self._lifetime(slot_id), when)
            self._slots[slot_id] = slot
            pair.live.append(slot)
            ids.append(slot_id)
        pair.releases.append(Release(at, tuple(ids)))

    def _lifetime(self, key: str) -> float:
        mean = self._opt("take_mean_s", 30.0)
        return -mean * math.log(1.0 - self._draw(f"life|{key}"))
