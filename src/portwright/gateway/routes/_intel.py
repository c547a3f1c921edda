"""`/v1/portals/{name}/observations` and `/predictions`: what was seen, what is expected.

Slot observations are platform-wide (a portal's calendar is the same for every tenant), so
any authenticated key may read them.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query

from portwright.client.models import (
    ErrorBody,
    ExploreSpan,
    PredictedWindow,
    Prediction,
    PredictionList,
    SlotObservation,
    SlotObservationList,
)
from portwright.gateway._context import GatewayContext
from portwright.gateway._errors import ERROR_RESPONSES, ApiError
from portwright.intelligence import portal_forecasts
from portwright.store import SlotFilter, SlotRunRecord, Store

__all__ = ["add_intel_routes"]

PortalName = Annotated[str, Path(min_length=1, max_length=100)]
Center = Annotated[str | None, Query(min_length=1, max_length=64)]
VisaType = Annotated[str | None, Query(min_length=1, max_length=64)]
RESPONSES = {
    **ERROR_RESPONSES,
    404: {"model": ErrorBody, "description": "unknown portal (no registration, no observations)"},
}
Time = Annotated[float | None, Query(ge=0, le=32503680000, description="POSIX seconds")]


def _view(r: SlotRunRecord) -> SlotObservation:
    return SlotObservation(
        id=r.id, center=r.center, visa_type=r.visa_type, open=r.open, new=r.new,
        slot_ids=list(r.slot_ids), first_at=r.first_at, last_at=r.last_at, scans=r.scans,
    )  # fmt: skip


def _known(store: Store, name: str) -> None:
    """404 unless the portal is registered or has observations."""
    try:
        store.portals.get(name)
    except LookupError:
        if not store.intel.slots.keys(name):
            raise ApiError(404, "unknown_portal", f"no portal {name!r}") from None


def add_intel_routes(router: APIRouter, ctx: GatewayContext) -> None:
    """Add the two read routes to the `/v1/portals` router."""

    @router.get(
        "/{name}/observations",
        response_model=SlotObservationList,
        responses=RESPONSES,
        summary="Slot observations of a portal",
    )
    async def observations(
        name: PortalName,
        center: Center = None,
        visa_type: VisaType = None,
        since: Time = None,
        until: Time = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(max_length=20, description="next_cursor")] = None,
    ) -> SlotObservationList:
        """Runs of scans per (center, visa type), newest first: each run is consecutive
        scans that saw the same open slots (`open` 0 = nothing open). `since`/`until`
        (portal clock) keep runs overlapping that span; pass `next_cursor` back as
        `cursor` for the next page."""
        before: int | None = None
        if cursor is not None:
            if not cursor.isdigit() or int(cursor) < 1:
                raise ApiError(422, "invalid_cursor", f"cursor: not a next_cursor ({cursor!r})")
            before = int(cursor)
        if since is not None and until is not None and until <= since:
            raise ApiError(422, "invalid_span", "until: must be after since")
        store = ctx.store
        await asyncio.to_thread(_known, store, name)
        where = SlotFilter(name, center, visa_type, since, until)
        rows = await asyncio.to_thread(store.intel.slots.runs, where, limit=limit, before_id=before)
        next_cursor = str(rows[-1].id) if len(rows) == limit else None
        return SlotObservationList(data=[_view(r) for r in rows], next_cursor=next_cursor)

    @router.get(
        "/{name}/predictions",
        response_model=PredictionList,
        responses=RESPONSES,
        summary="Predicted release windows of a portal",
    )
    async def predictions(
        name: PortalName,
        center: Center = None,
        visa_type: VisaType = None,
        at: Time = None,
        horizon_h: Annotated[float, Query(gt=0, le=168)] = 48.0,
    ) -> PredictionList:
        """Per (center, visa type): the next predicted release windows, with the
        confidence that each is a real window and the chance of a release in it. The
        forecast starts at `at`, by default at the key's latest observation (portal
        clock). `fallback` is true while the history is too thin to predict.
        `explore` is exploration, not a prediction: on the days with no predicted
        window, the span a watcher polls densely because a window is likeliest there
        over all days so far."""
        store = ctx.store
        await asyncio.to_thread(_known, store, name)
        found = await asyncio.to_thread(
            portal_forecasts, store, name, center=center, visa_type=visa_type, at=at,
            horizon_s=horizon_h * 3600.0,
        )  # fmt: skip
        return PredictionList(
            data=[
                Prediction(
                    center=k.center,
                    visa_type=k.visa_type,
                    at=k.at,
                    fallback=k.forecast.fallback,
                    observed_days=k.forecast.observed_days,
                    releases=k.forecast.releases,
                    windows=[
                        PredictedWindow(
                            start=w.start, end=w.end, confidence=w.confidence, chance=w.chance
                        )
                        for w in k.forecast.windows
                    ],
                    explore=[
                        ExploreSpan(start=w.start, end=w.end, confidence=w.confidence)
                        for w in k.explore
                    ],
                )
                for k in found
            ]
        )
