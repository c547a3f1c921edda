"""The dispatch service: orders to drivers, least loaded first, every change through the outbox.

Each method is one database transaction that changes the assignment (or the
driver) and writes the domain events it causes to the outbox, so an event
exists if and only if its change committed. A shop webhook is applied in the
same transaction that marks its inbox row done: a crash anywhere repeats the
whole change or none of it.

Assignment events carry the order's platform and `order_id`, the new
`status` (the shop's delivery statuses: accepted, assigned, picked_up,
in_transit, delivered, failed, cancelled), the `driver_id`, and the assignment's
`version`; their event id (`<order key>:v<version>`) is the idempotency key of
the status sync back to the platform.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from portwright._ids import new_id
from portwright.apps.dispatch._normalize import ShopChange, normalize
from portwright.apps.dispatch._store import (
    ACTIVE,
    AssignmentRecord,
    DispatchRepository,
    DriverRecord,
)
from portwright.store import FinishedNote, InboxRecord, Store

__all__ = [
    "ASSIGNMENT_CHANGED",
    "DELIVERY_COMPLETED",
    "DRIVER_LOCATION_UPDATED",
    "DRIVER_STATUSES",
    "ORDER_ASSIGNED",
    "ORDER_CREATED",
    "SYNC_TOPICS",
    "DispatchError",
    "Dispatcher",
    "order_key",
]

ORDER_CREATED = "order.created"
ORDER_ASSIGNED = "order.assigned"
DRIVER_LOCATION_UPDATED = "driver.location_updated"
ASSIGNMENT_CHANGED = "assignment.changed"
DELIVERY_COMPLETED = "delivery.completed"
SYNC_TOPICS = (ORDER_ASSIGNED, ASSIGNMENT_CHANGED, DELIVERY_COMPLETED)
"""What a platform's status sync endpoint subscribes to (and what drivers are pushed)."""

NAMES = {
    ORDER_CREATED: "OrderCreated",
    ORDER_ASSIGNED: "OrderAssigned",
    DRIVER_LOCATION_UPDATED: "DriverLocationUpdated",
    ASSIGNMENT_CHANGED: "AssignmentChanged",
    DELIVERY_COMPLETED: "DeliveryCompleted",
}
DRIVER_STATUSES = frozenset({"picked_up", "in_transit", "delivered", "failed"})
TERMINAL = frozenset({"delivered", "failed", "cancelled"})
WAITING = "accepted"  # no driver yet (the shops' word for it)
_BATCH = "portwright.dispatch.batch"  # conn.info key while a batch applies: {tenant: _Tenant}
_EVENTS = "portwright.dispatch.events"  # conn.info key: the batch's outbox rows, written last
_LOCKED = "portwright.dispatch.locked"  # conn.info key: {order key: its locked assignment}
_SAVES = "portwright.dispatch.saves"  # conn.info key: {order key: assignment to write at the end}
_BATCH_SIZE = "portwright.dispatch.batch_size"  # conn.info key: the batch's number of changes
_SPARE_DRIVERS = 2  # a batch reads this many more least loaded drivers than it has changes


@dataclass
class _Tenant:
    """What a batch's transaction knows of one tenant once it holds the tenant's lock: the
    available drivers it may pick from and the loads of every driver it has looked at,
    kept up to date by `shift`.

    The least loaded driver comes off a heap of (load, driver id) — the order `_pick`
    defines, ties by id — so a pick costs O(log N), not a scan per order. A batch need not
    read all of a tenant's N drivers (5,000 at 200 orders/s made building this state most
    of a batch's work): with `complete` False, `drivers` holds the K least loaded at the
    start (`DispatchRepository.least_loaded`). Every other available driver then weighs at
    least as much as the K-th, and each pick adds one order to one driver, so after p picks
    at least K - p of the K are still no heavier than any driver outside them: while
    `budget` (K - 2: one pick may exclude a driver) lasts, the heap's least loaded is the
    tenant's. A driver outside them whose load changes (an order of theirs ends) is looked
    up (`lookup`: available, load) before the change and joins the heap if available; when
    the budget runs out, `reload` reads every available driver and the batch's own load
    changes are laid over the database's. An entry whose load is no longer the driver's is
    stale and skipped."""

    drivers: list[str]
    loads: dict[str, int]
    complete: bool = True
    lookup: Callable[[str], tuple[bool, int]] | None = None
    reload: Callable[[], tuple[list[str], dict[str, int]]] | None = None
    budget: int = field(init=False)
    _available: set[str] = field(init=False)
    _heap: list[tuple[int, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.budget = max(0, len(self.drivers) - 2)
        self._fill(self.drivers)

    def _fill(self, drivers: list[str]) -> None:
        self._available = set(drivers)
        loads = self.loads
        self._heap = [(loads.get(d, 0), d) for d in drivers]
        heapq.heapify(self._heap)

    def know(self, driver_id: str | None) -> None:
        """Make sure `driver_id`'s load is known (looked up if it is not) before it changes."""
        if driver_id is None or driver_id in self.loads or driver_id in self._available:
            return
        if self.lookup is None:  # every driver's load was given
            return
        available, load = self.lookup(driver_id)
        self.loads[driver_id] = load
        if available:
            self._available.add(driver_id)
            heapq.heappush(self._heap, (load, driver_id))

    def shift(self, driver_id: str | None, delta: int) -> None:
        """`driver_id` has `delta` more active orders."""
        if driver_id is None:
            return
        self.know(driver_id)
        self.loads[driver_id] = self.loads.get(driver_id, 0) + delta
        self.moved(driver_id)

    def moved(self, driver_id: str | None) -> None:
        """`driver_id`'s load changed (in `loads`)."""
        if driver_id is not None and driver_id in self._available:
            heapq.heappush(self._heap, (self.loads.get(driver_id, 0), driver_id))

    def pick(self, exclude: str | None) -> str | None:
        """The least loaded available driver other than `exclude` (ties by id)."""
        if not self.complete:
            if self.budget <= 0:
                assert self.reload is not None
                drivers, stored = self.reload()
                self.loads = {**stored, **self.loads}  # this batch's changes win
                self.complete = True
                self._fill(drivers)
            self.budget -= 1
        heap, passed, found = self._heap, [], None
        while heap:
            load, driver = heap[0]
            if load != self.loads.get(driver, 0):
                heapq.heappop(heap)  # stale: the driver's current load has its own entry
            elif driver == exclude:
                passed.append(heapq.heappop(heap))
            else:
                found = driver
                break
        for entry in passed:
            heapq.heappush(heap, entry)
        return found


class DispatchError(ValueError):
    """A driver's request cannot apply; `field` names what is wrong, `status` the HTTP code."""

    def __init__(self, field: str, problem: str, *, status: int = 422) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.status = status


def order_key(tenant_id: str, platform: str, order_id: str) -> str:
    """One order of one tenant on one platform (the assignment's key and events' subject)."""
    return f"{tenant_id}:{platform}:{order_id}"


class Dispatcher:
    """Assigns a tenant's orders to its available drivers, least loaded first (ties by id)."""

    def __init__(self, store: Store, *, wake: Callable[[], None] | None = None) -> None:
        self.store = store
        self.repo = DispatchRepository(store.engine)  # the dispatch_* tables
        self.wake = wake
        self._pending: list[tuple[InboxRecord, ShopChange, asyncio.Future[str]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def _woken(self, written: int) -> None:
        if written and self.wake is not None:
            self.wake()

    # -- shop webhooks ----------------------------------------------------------------
    async def ingest(self, event: InboxRecord) -> str:
        """Apply one claimed shop webhook; its events and the inbox row's "done" (with this
        note, a `FinishedNote`) commit together.

        Events claimed together (the inbox processor hands over a batch at once) are applied
        in one transaction, tenant by tenant; if that transaction fails, each event is
        retried in its own, so a bad one fails alone."""
        if event.tenant_id is None:
            raise DispatchError(
                f"webhook_sources.{event.source}.tenant", "not set: whose orders are these?"
            )
        change = normalize(event.source, event.event_type, event.payload)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((event, change, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the rest of the processor's batch queue up
        while self._pending:
            batch, self._pending = self._pending, []
            batch.sort(key=lambda item: (item[0].tenant_id or "", item[0].received_at))
            try:
                notes = await asyncio.to_thread(self._ingest_many, batch)
            except Exception:  # noqa: BLE001 - one at a time, so a bad event fails alone
                notes = []
                for item in batch:
                    try:
                        notes.append((await asyncio.to_thread(self._ingest_many, [item]))[0])
                    except Exception as exc:  # noqa: BLE001 - handed to the processor
                        notes.append(exc)
            written = 0
            for (_, _, future), note in zip(batch, notes, strict=True):
                if isinstance(note, BaseException):
                    future.set_exception(note)
                else:
                    future.set_result(note[0])
                    written += note[1]
            self._woken(written)

    def _ingest_many(
        self, batch: list[tuple[InboxRecord, ShopChange, asyncio.Future[str]]]
    ) -> list[tuple[str, int] | BaseException]:
        out: list[tuple[str, int] | BaseException] = []
        with self.store.engine.begin() as conn:
            # The tenants' locks (in id order), drivers and loads are taken once and kept for
            # the rest of this transaction (nothing else can change them while the locks are
            # held), as are the batch's inbox rows (claimed in one statement) and its orders'
            # assignments (locked in one). Its domain events are written together at the end,
            # in the order they arose.
            conn.info[_BATCH] = {}
            conn.info[_BATCH_SIZE] = len(batch)
            events: list[dict[str, Any]] = []
            conn.info[_EVENTS] = events
            try:
                for tenant_id in sorted({e.tenant_id for e, _, _ in batch if e.tenant_id}):
                    self._serialize(conn, tenant_id)
                # Claim the rows first: a row whose lease another processor took is skipped.
                rows = [event for event, _, _ in batch]
                claimed = self.repo.finish_inbox(conn, rows, "dispatched")
                keys = [
                    order_key(event.tenant_id or "", event.source, change.order_id)
                    for event, change, _ in batch
                    if event.id in claimed
                ]
                found = self.repo.lock_many(conn, keys)
                conn.info[_LOCKED] = {key: found.get(key) for key in keys}
                saves: dict[str, AssignmentRecord] = {}
                conn.info[_SAVES] = saves
                notes: dict[str, str] = {}
                for event, change, _ in batch:
                    assert event.tenant_id is not None
                    if event.id not in claimed:
                        out.append(RuntimeError(f"inbox row {event.id}: lease lost; not applied"))
                        continue
                    note, written = self.apply_shop(conn, event.tenant_id, event.source, change)
                    notes[event.id] = note
                    out.append((FinishedNote(note), written))
                self.repo.save_many(conn, list(saves.values()))
                self.store.outbox.add_many(conn, events)
                # The rows were marked done above; their notes go in the same transaction, so
                # the processor has nothing left to write (see FinishedNote).
                self.repo.note_inbox(conn, notes)
            finally:
                for state in (_BATCH, _BATCH_SIZE, _EVENTS, _LOCKED, _SAVES):
                    conn.info.pop(state, None)
        return out

    def apply_shop(
        self, conn: sa.Connection, tenant_id: str, platform: str, change: ShopChange
    ) -> tuple[str, int]:
        """The change's effect on the assignment; returns (note, events written)."""
        key = order_key(tenant_id, platform, change.order_id)
        self._serialize(conn, tenant_id)
        current = self._lock(conn, key)
        if change.kind == "created":
            if current is not None:
                return f"order {change.order_id}: already known ({current.status})", 0
            record = AssignmentRecord(
                key, tenant_id, platform, change.order_id, None, WAITING, 0, 0
            )
            summary = dict(change.summary)
            self._emit(conn, ORDER_CREATED, record, f"{key}:created", order=summary)
            record = self._assign(conn, record, reason="new order", order=summary)
            who = record.driver_id or "nobody (no driver available)"
            return f"order {change.order_id} assigned to {who}", 1 + (record.driver_id is not None)
        if change.kind == "updated":
            return f"order {change.order_id}: updated, nothing to dispatch", 0
        status = "cancelled" if change.kind == "cancelled" else "delivered"
        if current is None:  # the order's creation never reached us: remember the outcome
            record = AssignmentRecord(key, tenant_id, platform, change.order_id, None, status, 0, 0)
            self._save(conn, record)
            return f"order {change.order_id}: {status} before it was dispatched", 0
        if current.status in TERMINAL:
            return f"order {change.order_id}: already {current.status}", 0
        topic = ASSIGNMENT_CHANGED if status == "cancelled" else DELIVERY_COMPLETED
        self._change(
            conn,
            current,
            topic,
            status=status,
            driver_id=current.driver_id,
            reason=f"platform: order {change.kind}",
        )
        return f"order {change.order_id}: {status} by the platform", 1

    # -- assignment -------------------------------------------------------------------
    def _lock(self, conn: sa.Connection, key: str) -> AssignmentRecord | None:
        """The order's assignment, locked: from the batch's prefetch when it has the order."""
        locked: dict[str, AssignmentRecord | None] | None = conn.info.get(_LOCKED)
        if locked is not None and key in locked:
            return locked[key]
        return self.repo.lock(conn, key)

    def _save(self, conn: sa.Connection, record: AssignmentRecord) -> None:
        """Write the assignment; in a batch, one of the orders it locked is kept in the
        prefetch and written with the others at the end (the last version of each)."""
        locked: dict[str, AssignmentRecord | None] | None = conn.info.get(_LOCKED)
        if locked is None or record.order_key not in locked:
            self.repo.save(conn, record)
            return
        locked[record.order_key] = record
        conn.info[_SAVES][record.order_key] = record

    def _serialize(self, conn: sa.Connection, tenant_id: str) -> _Tenant | None:
        """Take the tenant's dispatch lock (once per batch); the batch's state of the tenant,
        or None outside a batch."""
        batch: dict[str, _Tenant] | None = conn.info.get(_BATCH)
        if batch is not None and tenant_id in batch:
            return batch[tenant_id]
        self.repo.serialize(conn, tenant_id)
        if batch is None:
            return None
        # A batch picks at most once per order it holds: read that many least loaded
        # drivers (and two more), not all of them (see _Tenant).
        k = int(conn.info.get(_BATCH_SIZE, 0)) + _SPARE_DRIVERS
        least = self.repo.least_loaded(conn, tenant_id, k + 1)
        complete = len(least) <= k  # that is all of them
        least = least[:k]
        state = _Tenant(
            [d for d, _ in least],
            dict(least),
            complete=complete,
            lookup=lambda d: self.repo.driver_load(conn, tenant_id, d),
            reload=lambda: (
                self.repo.lock_driver_ids(conn, tenant_id),
                self.repo.loads(conn, tenant_id),
            ),
        )
        batch[tenant_id] = state
        return state

    def _pick(self, conn: sa.Connection, tenant_id: str, exclude: str | None = None) -> str | None:
        state: _Tenant | None = (conn.info.get(_BATCH) or {}).get(tenant_id)
        if state is not None:
            return state.pick(exclude)
        drivers = self.repo.lock_driver_ids(conn, tenant_id)
        loads = self.repo.loads(conn, tenant_id) if drivers else {}
        candidates = [d for d in drivers if d != exclude]
        if not candidates:
            return None
        return min(candidates, key=lambda d: (loads.get(d, 0), d))

    def _assign(
        self,
        conn: sa.Connection,
        record: AssignmentRecord,
        *,
        reason: str,
        order: Mapping[str, Any] | None = None,
        exclude: str | None = None,
    ) -> AssignmentRecord:
        """Give `record` to the least loaded driver (or leave it waiting, saved)."""
        driver = self._pick(conn, record.tenant_id, exclude)
        if driver is None:
            if record.version == 0:
                record = replace(record, version=1)
                self._save(conn, record)
                return record
            return self._change(
                conn, record, ASSIGNMENT_CHANGED, status=WAITING, driver_id=None, reason=reason
            )
        first = record.driver_id is None and record.status == WAITING
        topic = ORDER_ASSIGNED if first else ASSIGNMENT_CHANGED
        return self._change(
            conn, record, topic, status="assigned", driver_id=driver, reason=reason, order=order
        )

    def _change(
        self,
        conn: sa.Connection,
        record: AssignmentRecord,
        topic: str,
        *,
        status: str,
        driver_id: str | None,
        reason: str,
        order: Mapping[str, Any] | None = None,
    ) -> AssignmentRecord:
        new = replace(record, status=status, driver_id=driver_id, version=record.version + 1)
        state = (conn.info.get(_BATCH) or {}).get(new.tenant_id)
        if state is not None:  # loads looked up before the save may write the record
            state.know(record.driver_id)
            state.know(new.driver_id)
        self._save(conn, new)
        if state is not None:
            if record.driver_id is not None and record.status in ACTIVE:
                state.shift(record.driver_id, -1)
            if new.driver_id is not None and new.status in ACTIVE:
                state.shift(new.driver_id, +1)
        self._emit(
            conn,
            topic,
            new,
            f"{new.order_key}:v{new.version}",
            reason=reason,
            previous_driver_id=record.driver_id,
            order=dict(order or {}),
        )
        return new

    def _emit(
        self, conn: sa.Connection, topic: str, record: AssignmentRecord, event_id: str, **extra: Any
    ) -> None:
        payload = {
            "type": NAMES[topic],
            "order_key": record.order_key,
            "order_id": record.order_id,
            "platform": record.platform,
            "status": record.status,
            "driver_id": record.driver_id,
            "version": record.version,
            **extra,
        }
        event: dict[str, Any] = {
            "event_id": event_id,
            "topic": topic,
            "payload": payload,
            "tenant_id": record.tenant_id,
            "subject": record.order_key,
            "platform": record.platform,
        }
        batched: list[dict[str, Any]] | None = conn.info.get(_EVENTS)
        if batched is not None:
            batched.append(event)
        else:
            self.store.outbox.add(conn, **event)

    # -- drivers ----------------------------------------------------------------------
    async def put_driver(
        self, tenant_id: str, driver_id: str, *, name: str = "", available: bool = True
    ) -> DriverRecord:
        """Add or update a driver. Coming on duty takes waiting orders; going off duty hands
        the driver's not-yet-picked-up orders to others (AssignmentChanged)."""
        record, written = await asyncio.to_thread(
            self._put_driver, tenant_id, driver_id, name, available
        )
        self._woken(written)
        return record

    def _put_driver(
        self, tenant_id: str, driver_id: str, name: str, available: bool
    ) -> tuple[DriverRecord, int]:
        written = 0
        with self.store.engine.begin() as conn:
            self.repo.serialize(conn, tenant_id)
            driver = self.repo.upsert_driver(
                conn, tenant_id, driver_id, name=name, available=available
            )
            if available:
                for waiting in self.repo.unassigned(conn, tenant_id):
                    if waiting.status == WAITING:
                        self._assign(conn, waiting, reason=f"driver {driver_id} on duty")
                        written += 1
            else:
                for active in self.repo.active_of(conn, tenant_id, driver_id):
                    if active.status == "assigned":
                        self._assign(
                            conn, active, reason=f"driver {driver_id} off duty", exclude=driver_id
                        )
                        written += 1
        return driver, written

    async def driver_status(
        self, tenant_id: str, driver_id: str, key: str, status: str
    ) -> AssignmentRecord:
        """A driver reports progress on one of its orders (picked_up … delivered, failed)."""
        if status not in DRIVER_STATUSES:
            allowed = ", ".join(sorted(DRIVER_STATUSES))
            raise DispatchError("status", f"must be one of: {allowed}")
        record = await asyncio.to_thread(self._driver_status, tenant_id, driver_id, key, status)
        self._woken(1)
        return record

    def _driver_status(
        self, tenant_id: str, driver_id: str, key: str, status: str
    ) -> AssignmentRecord:
        with self.store.engine.begin() as conn:
            self.repo.serialize(conn, tenant_id)
            current = self.repo.lock(conn, key)
            if current is None or current.tenant_id != tenant_id:
                raise DispatchError("order_key", f"no order {key}", status=404)
            if current.driver_id != driver_id or current.status not in (
                "assigned",
                "picked_up",
                "in_transit",
            ):
                raise DispatchError(
                    "order_key", f"not an active order of driver {driver_id}", status=409
                )
            topic = DELIVERY_COMPLETED if status == "delivered" else ASSIGNMENT_CHANGED
            return self._change(
                conn,
                current,
                topic,
                status=status,
                driver_id=driver_id,
                reason=f"driver {driver_id}",
            )

    async def location(self, tenant_id: str, driver_id: str, lat: float, lon: float) -> None:
        """Record a driver's position and publish DriverLocationUpdated."""
        if not (-90.0 <= lat <= 90.0):
            raise DispatchError("lat", "must be between -90 and 90")
        if not (-180.0 <= lon <= 180.0):
            raise DispatchError("lon", "must be between -180 and 180")
        await asyncio.to_thread(self._location, tenant_id, driver_id, lat, lon)
        self._woken(1)

    def _location(self, tenant_id: str, driver_id: str, lat: float, lon: float) -> None:
        with self.store.engine.begin() as conn:
            if not self.repo.set_location(conn, tenant_id, driver_id, lat, lon):
                raise DispatchError("driver_id", f"no driver {driver_id}", status=404)
            self.store.outbox.add(
                conn,
                event_id=new_id("loc"),
                topic=DRIVER_LOCATION_UPDATED,
                payload={
                    "type": NAMES[DRIVER_LOCATION_UPDATED],
                    "driver_id": driver_id,
                    "lat": lat,
                    "lon": lon,
                },
                tenant_id=tenant_id,
                subject=driver_id,
            )
