"""A portal's page: its state (paused, cooling down until when and why, circuit, degraded),
the controls an operator has over it, and its recent audit rows.

Cooling a portal down is open to every operator (it only slows the portal's jobs);
ending a cooldown early, like pausing, is for a platform-wide operator: a portal is
shared by every tenant and its cooldown usually honours the portal's own Retry-After.
Both are audited as `portal.cooldown` (cause `operator`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import ForbiddenError, Operator, need
from portwright.console._render import PREFIX, page
from portwright.console._views import mask, portal_status
from portwright.orchestrator import JobService
from portwright.store import PortalRecord

__all__ = ["portals_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
Acting = Annotated[Operator, Depends(need("operator"))]
MAX_COOLDOWN_MIN = 24 * 60
RECENT = 20


def portals_router(service: JobService) -> APIRouter:
    router = APIRouter()
    store = service.store

    async def portal_or_404(name: str) -> PortalRecord:
        try:
            return await asyncio.to_thread(store.portals.get, name)
        except LookupError as exc:
            raise HTTPException(404, f"no portal {name}") from exc

    @router.get("/portals/{name}")
    async def portal_page(request: Request, name: str, op: Viewer, problem: str = "") -> Response:
        portal = await portal_or_404(name)
        breaker = await asyncio.to_thread(store.portals.portal_breaker, name)
        now = time.time()
        status = portal_status(portal, breaker.state, now, request.app.state.display_tz)
        recent = await asyncio.to_thread(
            store.console.audit_page, tenant_id=op.tenant_id, target=name, limit=RECENT
        )
        return page(request, "portal.html", op, nav="dashboard", portal=portal, status=status,
                    breaker=breaker, cooling=bool(portal.cooldown_until and
                                                  portal.cooldown_until > now),
                    rows=[r for r in recent.rows if r.target_type == "portal"], mask=mask,
                    problem=problem, max_minutes=MAX_COOLDOWN_MIN,
                    status_code=422 if problem else 200)  # fmt: skip

    @router.post("/portals/{name}/cooldown")
    async def cool_down(
        request: Request, name: str, op: Acting,
        minutes: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        await portal_or_404(name)
        try:
            value = float(minutes)
        except ValueError:
            value = -1.0
        if not 0 < value <= MAX_COOLDOWN_MIN:
            problem = f"minutes: a number above 0 and at most {MAX_COOLDOWN_MIN}, got {minutes!r}"
            return await portal_page(request, name, op, problem=problem)
        await service.extend_portal_cooldown(
            name, seconds=value * 60, actor=op.actor, reason=reason.strip()
        )
        return RedirectResponse(f"{PREFIX}/portals/{name}", status_code=303)

    @router.post("/portals/{name}/cooldown/end")
    async def end_cooldown(name: str, op: Acting, reason: Annotated[str, Form()] = "") -> Response:
        if not op.platform_wide:
            raise ForbiddenError(
                "a portal is shared by every tenant: ending its cooldown is for a platform operator"
            )
        await portal_or_404(name)
        await service.end_portal_cooldown(name, actor=op.actor, reason=reason.strip())
        return RedirectResponse(f"{PREFIX}/portals/{name}", status_code=303)

    return router
