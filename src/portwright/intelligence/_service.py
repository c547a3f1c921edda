"""The watch service: shared watch jobs for the bookings that wait for a slot.

A booking job whose adapter names a `watch_key` (e.g. the consulate adapter with
`watch: true`) waits durably for input "slot" instead of scanning. The service finds such
jobs in the store (`sync`), lets a `WatchHub` poll once per (portal, key) for all of them
through the caller's `scan`, stores every scan as a slot observation, honours the
portal's stored cooldown, and hands each new slot to one waiting job (highest job priority
first, then the oldest) by sending it the input. A job that got a slot is not offered
another until its row changes (it moved on, or came back to waiting after losing the slot).

Each key's predictor starts from the key's stored observations (`predictor_from_runs`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from portwright.intelligence._model import DAY_S, PredictorConfig, ReleasePredictor
from portwright.intelligence._watcher import Scan, ScanResult, WatchClock, WatchHub, WatchKey

if TYPE_CHECKING:
    from portwright.orchestrator import JobService
    from portwright.store import JobRecord

__all__ = ["WatchService"]

log = logging.getLogger(__name__)
HISTORY_S = 56 * DAY_S


class WatchService:
    """Finds waiting bookings, runs their shared watch jobs, hands slots over."""

    def __init__(
        self,
        service: JobService,
        scan: Scan,
        *,
        per_hour: int | Mapping[str, int],
        clock: WatchClock | None = None,
        config: PredictorConfig | None = None,
        **hub_options: Any,
    ) -> None:
        self.service = service
        self._user_scan = scan
        self.hub = WatchHub(
            scan=self._scan, hand_off=self._hand_off, per_hour=per_hour, clock=clock,
            predictor=ReleasePredictor(config), on_scan=self._record,
            cooldown_until=self._cooldown, **hub_options,
        )  # fmt: skip
        self._handed: dict[str, float] = {}  # job id -> its updated_at when handed a slot
        self._known: set[WatchKey] = set()
        self._waiting: dict[str, WatchKey] = {}
        self.handed_off: list[tuple[str, str]] = []  # (job id, slot id), in order

    # -- finding the waiting bookings ------------------------------------------------------

    def _key_of(self, job: JobRecord) -> WatchKey | None:
        registry = self.service.rt.registry
        if job.adapter not in registry:
            return None
        cls = registry.get(job.adapter)
        try:
            data = cls.input_model.model_validate(job.input)
            subject = cls().watch_key(data)
        except Exception:  # noqa: BLE001 - a job whose input no longer parses watches nothing
            log.warning("job %s: input does not parse; not watched", job.id)
            return None
        if subject is None:
            return None
        return WatchKey(job.portal, str(subject[0]), str(subject[1]))

    async def sync(self) -> int:
        """Bring the hub's waiting lists in line with the store; returns how many wait."""
        jobs = await asyncio.to_thread(self.service.store.jobs.waiting_for_input, "slot")
        now_waiting: dict[str, WatchKey] = {}
        for job in jobs:
            if self._handed.get(job.id) == job.updated_at:
                continue  # handed a slot already; waiting for it to move on
            key = self._key_of(job)
            if key is None:
                continue
            if key not in self._known:
                await asyncio.to_thread(self._learn, key)
            now_waiting[job.id] = key
            self.hub.wait(key, job.id, priority=job.priority)
        for job_id in set(self._waiting) - set(now_waiting):
            self.hub.cancel(job_id)
        self._waiting = now_waiting
        return len(now_waiting)

    def _learn(self, key: WatchKey) -> None:
        """Start the key's predictor from its stored observations."""
        self._known.add(key)
        slots = self.service.store.intel.slots
        latest = [
            at for c, v, at in slots.keys(key.portal) if (c, v) == (key.center, key.visa_type)
        ]
        if not latest:
            return
        runs = slots.history(key.portal, key.center, key.visa_type, since=latest[0] - HISTORY_S)
        for run in runs:
            try:
                self.hub.predictor.observe_run(str(key), run.first_at, run.last_at, run.open,
                                               run.new)  # fmt: skip
            except ValueError:
                continue  # an overlapping run (two scanners at once)

    # -- the hub's seams -------------------------------------------------------------------

    async def _scan(self, key: WatchKey) -> ScanResult:
        return await self._user_scan(key)

    async def _record(self, key: WatchKey, at: float, result: ScanResult) -> None:
        await asyncio.to_thread(
            self.service.store.intel.slots.record, portal=key.portal, center=key.center,
            visa_type=key.visa_type, at=at, open_slots=len(result.slots),
            slot_ids=result.slots,
        )  # fmt: skip

    def _cooldown(self, portal: str) -> float | None:
        try:
            return self.service.store.portals.get(portal).cooldown_until
        except LookupError:
            return None

    async def _hand_off(self, job_id: str, key: WatchKey, slot: str) -> bool:
        from portwright.orchestrator import ConflictError  # here: the predictor alone needs no DBOS

        job = await asyncio.to_thread(self.service.store.jobs.get, job_id)
        if job.waiting_for != "slot" or job.status != "waiting":
            return False
        try:
            await self.service.provide_input(
                job_id, "slot", {"slot_id": slot, "key": str(key)}, actor="watcher"
            )
        except ConflictError:
            return False
        self._handed[job_id] = job.updated_at
        self._waiting.pop(job_id, None)
        self.handed_off.append((job_id, slot))
        return True

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, sync_every_s: float = 5.0, until: float | None = None) -> None:
        """Sync and poll in turns: the hub runs `sync_every_s` of its clock between syncs."""
        clock = self.hub.clock
        while until is None or clock.now() < until:
            await self.sync()
            stop = clock.now() + sync_every_s
            await self.hub.run(until=stop if until is None else min(stop, until))
