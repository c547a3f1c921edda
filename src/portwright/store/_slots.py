"""Slot observations, stored as runs: what a portal's calendar showed, and when.

A scan of (portal, center, visa type) saw some slots open (possibly none). Consecutive
scans that saw the same slots, with no gap longer than `MAX_GAP_S` between them, extend
one row (`last_at`, `scans`); anything else starts a new row whose `new` counts the slots
the previous row did not show. So an hour of "nothing open" every few seconds is one row,
and every row boundary is a change worth knowing (a release, a slot taken, a blind gap).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from portwright.store._records import SlotRunRecord
from portwright.store._rows import to_record, to_records
from portwright.store._schema import slot_observations

__all__ = ["MAX_GAP_S", "MAX_IDS", "SlotFilter", "SlotObservationRepository"]

MAX_GAP_S = 3600.0  # a longer silence between scans is a blind gap, not watched time
MAX_IDS = 50  # slot ids kept per run (the count is always exact)


@dataclass(frozen=True, slots=True)
class SlotFilter:
    portal: str
    center: str | None = None
    visa_type: str | None = None
    since: float | None = None  # runs that were still going at or after this time
    until: float | None = None  # runs that started before this time


class SlotObservationRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        *,
        portal: str,
        center: str,
        visa_type: str,
        at: float,
        open_slots: int,
        slot_ids: Sequence[str] = (),
    ) -> SlotRunRecord:
        """One scan at `at` (portal clock) saw `open_slots` open; extend or start a run."""
        if open_slots < 0:
            raise ValueError(f"open_slots must be >= 0, got {open_slots}")
        if not math.isfinite(at):
            raise ValueError(f"at must be a finite time, got {at}")
        ids = sorted({str(i) for i in slot_ids})[:MAX_IDS]
        t = slot_observations
        key = (t.c.portal == portal) & (t.c.center == center) & (t.c.visa_type == visa_type)
        with self.engine.begin() as conn:
            last = conn.execute(
                sa.select(t).where(key).order_by(t.c.first_at.desc(), t.c.id.desc()).limit(1)
            ).first()
            if last is not None:
                prev = to_record(SlotRunRecord, last)
                same = prev.open == open_slots and list(prev.slot_ids) == ids
                if same and prev.last_at <= at <= prev.last_at + MAX_GAP_S:
                    conn.execute(
                        t.update().where(t.c.id == prev.id).values(last_at=at, scans=t.c.scans + 1)
                    )
                    return dataclasses.replace(prev, last_at=at, scans=prev.scans + 1)
                if same and at < prev.last_at:  # a late scan inside the run: nothing new
                    return prev
                new = _new_slots(prev, open_slots, ids)
            else:
                new = open_slots
            values = {
                "portal": portal, "center": center, "visa_type": visa_type,
                "open": open_slots, "new": new, "slot_ids": ids,
                "first_at": at, "last_at": at, "scans": 1,
            }  # fmt: skip
            row_id = conn.execute(t.insert().values(**values).returning(t.c.id)).scalar_one()
            return SlotRunRecord(id=int(row_id), **values)  # type: ignore[arg-type]

    def runs(
        self, where: SlotFilter, *, limit: int = 100, before_id: int | None = None
    ) -> list[SlotRunRecord]:
        """Runs matching `where`, newest first (by id), `limit` at most, ids below `before_id`."""
        t = slot_observations
        query = sa.select(t).where(t.c.portal == where.portal)
        if where.center is not None:
            query = query.where(t.c.center == where.center)
        if where.visa_type is not None:
            query = query.where(t.c.visa_type == where.visa_type)
        if where.since is not None:
            query = query.where(t.c.last_at >= where.since)
        if where.until is not None:
            query = query.where(t.c.first_at < where.until)
        if before_id is not None:
            query = query.where(t.c.id < before_id)
        query = query.order_by(t.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return to_records(SlotRunRecord, conn.execute(query))

    def history(
        self, portal: str, center: str, visa_type: str, *, since: float | None = None
    ) -> list[SlotRunRecord]:
        """A key's runs in time order (oldest first), for the predictor."""
        t = slot_observations
        query = sa.select(t).where(
            (t.c.portal == portal) & (t.c.center == center) & (t.c.visa_type == visa_type)
        )
        if since is not None:
            query = query.where(t.c.last_at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.first_at, t.c.id)).all()
        return to_records(SlotRunRecord, rows)

    def portals(self) -> list[tuple[str, int, float]]:
        """(portal, keys, latest scan time) of every portal with slot observations."""
        t = slot_observations
        query = (
            sa.select(
                t.c.portal,
                sa.func.count(sa.distinct(t.c.center + "/" + t.c.visa_type)),
                sa.func.max(t.c.last_at),
            )
            .group_by(t.c.portal)
            .order_by(t.c.portal)
        )
        with self.engine.connect() as conn:
            return [(str(p), int(n), float(at)) for p, n, at in conn.execute(query)]

    def keys(self, portal: str) -> list[tuple[str, str, float]]:
        """(center, visa type, latest scan time) of every key the portal has runs for."""
        t = slot_observations
        query = (
            sa.select(t.c.center, t.c.visa_type, sa.func.max(t.c.last_at))
            .where(t.c.portal == portal)
            .group_by(t.c.center, t.c.visa_type)
            .order_by(t.c.center, t.c.visa_type)
        )
        with self.engine.connect() as conn:
            return [(str(c), str(v), float(at)) for c, v, at in conn.execute(query)]


def _new_slots(prev: SlotRunRecord, open_slots: int, ids: list[str]) -> int:
    """Slots this scan shows that the previous run did not."""
    if ids and (prev.slot_ids or prev.open == 0):
        return len(set(ids) - set(prev.slot_ids))
    return max(0, open_slots - prev.open)
