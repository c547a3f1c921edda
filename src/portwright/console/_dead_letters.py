"""Dead letters: outbound deliveries that ran out of attempts, filtered and replayed (audited).

A replay puts the chosen dead deliveries back to pending with a fresh attempt
budget (the relay picks them up at its next poll); the audit row keeps which
deliveries moved, their state before and after, and the filter used.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import Operator, need
from portwright.console._render import PREFIX, next_query, page
from portwright.store import DeliveryFilter, DeliveryRecord, Store

__all__ = ["dead_letters_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
Acting = Annotated[Operator, Depends(need("operator"))]
LIMIT = 500  # the most one "replay matching" moves
PAGE = 50
FILTERS = ("platform", "endpoint", "topic", "since", "until", "job")


def _day(field: str, text: str, *, end: bool) -> float | None:
    """`YYYY-MM-DD` (UTC) as a timestamp: the day's start, or with `end` the next day's."""
    if not text.strip():
        return None
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise HTTPException(
            422, f"{field}: expected a date like 2026-01-31, got {text!r}"
        ) from None
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return (start + dt.timedelta(days=1 if end else 0)).timestamp()


def _after(cursor: str) -> tuple[float, str] | None:
    """The pager's cursor (`<event time>:<delivery id>` of the last row shown)."""
    if not cursor:
        return None
    at, _, last_id = cursor.partition(":")
    try:
        return float(at), last_id
    except ValueError:
        raise HTTPException(
            422, f"cursor: expected <event time>:<delivery id>, got {cursor!r}"
        ) from None


def _where(op: Operator, filters: dict[str, str]) -> DeliveryFilter:
    return DeliveryFilter(
        tenant_id=op.tenant_id,
        endpoint_id=filters["endpoint"].strip() or None,
        platform=filters["platform"].strip() or None,
        topic=filters["topic"].strip() or None,
        since=_day("since", filters["since"], end=False),
        until=_day("until", filters["until"], end=True),
        job_id=filters.get("job", "").strip() or None,
    )


def _letter(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id, "endpoint_id": d.endpoint_id, "topic": d.topic, "platform": d.platform,
        "event_id": d.event_id, "status": d.status, "attempts": d.attempts,
        "last_status": d.last_status, "last_error": d.last_error,
    }  # fmt: skip


def dead_letters_router(store: Store) -> APIRouter:
    router = APIRouter()

    @router.get("/dead-letters")
    async def dead_letters(
        request: Request, op: Viewer, platform: str = "", endpoint: str = "", topic: str = "",
        since: str = "", until: str = "", job: str = "", replayed: int | None = None,
        cursor: str = "",
    ) -> Response:  # fmt: skip
        filters = {"platform": platform, "endpoint": endpoint, "topic": topic,
                   "since": since, "until": until, "job": job}  # fmt: skip
        rows = await asyncio.to_thread(
            store.deliveries.search, _where(op, filters), status="dead", limit=PAGE + 1,
            newest_first=True, before=_after(cursor),
        )  # fmt: skip
        total = await asyncio.to_thread(store.deliveries.count, _where(op, filters), status="dead")
        names = await asyncio.to_thread(store.console.tenant_names) if op.platform_wide else {}
        more, rows = len(rows) > PAGE, rows[:PAGE]
        last = f"{rows[-1].event_at!r}:{rows[-1].id}" if more and rows else None
        return page(request, "dead_letters.html", op, nav="dead-letters", rows=rows, total=total,
                    filters=filters, replayed=replayed, limit=LIMIT, tenant_names=names,
                    next_query=next_query(filters, last), paged=bool(cursor),
                    live_template="_dead_letters_live.html")  # fmt: skip

    @router.post("/dead-letters/replay")
    async def replay(
        op: Acting,
        delivery_id: Annotated[str, Form()] = "",
        platform: Annotated[str, Form()] = "", endpoint: Annotated[str, Form()] = "",
        topic: Annotated[str, Form()] = "", since: Annotated[str, Form()] = "",
        until: Annotated[str, Form()] = "", job: Annotated[str, Form()] = "",
        reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        filters = {"platform": platform, "endpoint": endpoint, "topic": topic,
                   "since": since, "until": until, "job": job}  # fmt: skip
        if delivery_id:
            try:
                one = await asyncio.to_thread(store.deliveries.get, delivery_id)
            except LookupError:
                one = None
            if one is None or (op.tenant_id is not None and one.tenant_id != op.tenant_id):
                raise HTTPException(404, f"delivery_id: no delivery {delivery_id}")
            chosen = [one] if one.status == "dead" else []
        else:
            chosen = await asyncio.to_thread(
                store.deliveries.search, _where(op, filters), status="dead", limit=LIMIT
            )
        moved = set(await asyncio.to_thread(store.deliveries.replay_ids, [d.id for d in chosen]))
        by_tenant: dict[str, list[DeliveryRecord]] = {}
        for d in chosen:
            if d.id in moved:
                by_tenant.setdefault(d.tenant_id, []).append(d)
        for tenant_id, letters in by_tenant.items():
            await asyncio.to_thread(
                store.audit.record, actor=op.actor, action="dead_letters.replay",
                target_type="delivery", target_id=delivery_id or letters[0].endpoint_id,
                before={"status": "dead", "deliveries": [_letter(d) for d in letters]},
                after={"status": "pending", "attempts": 0, "replayed": [d.id for d in letters],
                       "filter": {k: v for k, v in filters.items() if v}},
                reason=reason or f"replayed {len(letters)} dead letter(s) from the console",
                tenant_id=tenant_id,
            )  # fmt: skip
        query = {k: v for k, v in filters.items() if v} | {"replayed": str(len(moved))}
        return RedirectResponse(f"{PREFIX}/dead-letters?{urlencode(query)}", status_code=303)

    return router
