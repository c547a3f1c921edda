"""Releases: what the portals' calendars showed, and the windows the predictor expects.

`/intel` lists the portals with slot observations; `/intel/{portal}` shows, per (center,
visa type), a chart of the recent observations beside the predicted windows, the windows
as a table, the spans a watcher explores on days with no predicted window (marked as
exploration, not prediction), and the observation runs (filtered, paged). Observations are
platform-wide (a calendar is the same for every tenant): any signed-in viewer may read them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import Response

from portwright.console._auth import Operator, need
from portwright.console._chart import release_chart
from portwright.console._render import page
from portwright.intelligence import Window, portal_forecasts
from portwright.store import SlotFilter, Store

__all__ = ["intel_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
PAGE = 50
BACK_S = 3 * 86_400  # the chart shows three days of observations before the forecast


def _when(w: Window, tz: tzinfo) -> tuple[str, str]:
    """A span's day, and its hours with the zone."""
    return (
        f"{datetime.fromtimestamp(w.start, tz):%a %Y-%m-%d}",
        f"{datetime.fromtimestamp(w.start, tz):%H:%M} to "
        f"{datetime.fromtimestamp(w.end, tz):%H:%M %Z}",
    )


def _portal_view(store: Store, portal: str, center: str, visa: str, cursor: int | None,
                 request: Request) -> dict[str, Any]:  # fmt: skip
    keys = store.intel.slots.keys(portal)
    if not keys:
        raise HTTPException(404, f"no slot observations for portal {portal!r}")
    forecasts = portal_forecasts(store, portal, center=center or None, visa_type=visa or None)
    zone = getattr(request.app.state, "display_tz", None)
    charts = []
    for k in forecasts:
        runs = store.intel.slots.history(portal, k.center, k.visa_type, since=k.at - BACK_S)
        chart_kw: dict[str, Any] = {"title": f"{k.center} / {k.visa_type}", "back_s": BACK_S}
        if zone is not None:
            chart_kw["zone"] = zone
        tz = zone or UTC
        charts.append({
            "center": k.center, "visa_type": k.visa_type, "at": k.at,
            "forecast": k.forecast, "spans": [_when(w, tz) for w in k.forecast.windows],
            "explore": [(w, *_when(w, tz)) for w in k.explore],
            "svg": release_chart(runs, k.forecast.windows, k.at, explore=k.explore, **chart_kw),
        })  # fmt: skip
    where = SlotFilter(portal, center or None, visa or None)
    runs = store.intel.slots.runs(where, limit=PAGE, before_id=cursor)
    next_query = None
    if len(runs) == PAGE:
        next_query = urlencode({"center": center, "visa_type": visa, "cursor": runs[-1].id})
    return {"keys": keys, "charts": charts, "runs": runs, "next_query": next_query}


def intel_router(store: Store) -> APIRouter:
    router = APIRouter()

    @router.get("/intel")
    async def portals(request: Request, op: Viewer) -> Response:
        found = await asyncio.to_thread(store.intel.slots.portals)
        return page(request, "intel.html", op, nav="intel", portals=found)

    @router.get("/intel/{portal}")
    async def portal_page(
        request: Request, portal: str, op: Viewer, center: str = "", visa_type: str = "",
        cursor: str = "",
    ) -> Response:  # fmt: skip
        if cursor and not cursor.isdigit():
            raise HTTPException(422, f"cursor: not a page cursor ({cursor!r})")
        if len(portal) > 100 or len(center) > 64 or len(visa_type) > 64:
            raise HTTPException(422, "portal, center or visa_type: too long")
        view = await asyncio.to_thread(
            _portal_view, store, portal, center.strip(), visa_type.strip(),
            int(cursor) if cursor else None, request,
        )  # fmt: skip
        filters = {"center": center, "visa_type": visa_type}
        return page(request, "intel_portal.html", op, nav="intel", portal=portal,
                    filters=filters, **view)  # fmt: skip

    return router
