"""Adapter versions per portal: the rollout (live, canary, shadow), break rates, shadow
agreement and probe health; platform-wide admins change, promote and roll back (audited).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import Operator, need
from portwright.console._render import PREFIX, page
from portwright.orchestrator import JobService, RolloutChange

__all__ = ["rollouts_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
Admin = Annotated[Operator, Depends(need("admin"))]


def _platform(op: Operator) -> None:
    if not op.platform_wide:
        raise HTTPException(403, "rollouts are platform-wide: a tenant's operator cannot set them")


def _version(value: str) -> str | None:
    return value.strip() or None


def rollouts_router(service: JobService) -> APIRouter:
    router = APIRouter()
    rollouts = service.rt.rollouts

    def views() -> list[dict[str, Any]]:
        portals = sorted({a.portal_name() for a in service.rt.registry.all()})
        return [rollouts.describe(portal) for portal in portals]

    @router.get("/rollouts")
    async def listing(request: Request, op: Viewer) -> Response:
        rows = await asyncio.to_thread(views)
        return page(request, "rollouts.html", op, nav="rollouts", rows=rows)

    async def apply(fn: Any, *args: Any, **kw: Any) -> Response:
        try:
            await asyncio.to_thread(fn, *args, **kw)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return RedirectResponse(f"{PREFIX}/rollouts", status_code=303)

    @router.post("/rollouts/{portal}")
    async def change(
        portal: str, op: Admin,
        live: Annotated[str, Form()] = "", canary: Annotated[str, Form()] = "",
        canary_percent: Annotated[int, Form(ge=0, le=100)] = 0,
        canary_tenants: Annotated[str, Form(max_length=4000)] = "",
        shadow: Annotated[str, Form()] = "",
        promote_after: Annotated[int, Form(ge=0, le=100_000)] = 0,
        reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:  # fmt: skip
        _platform(op)
        tenants = [t.strip() for t in canary_tenants.replace(",", " ").split() if t.strip()]
        change = RolloutChange(
            live=_version(live), canary=_version(canary), canary_percent=canary_percent,
            canary_tenants=tenants, shadow=_version(shadow), promote_after=promote_after,
            clear_canary=not canary.strip(), clear_shadow=not shadow.strip(),
        )  # fmt: skip
        return await apply(rollouts.set, portal, change, actor=op.actor, reason=reason)

    @router.post("/rollouts/{portal}/promote")
    async def promote(
        portal: str, op: Admin, which: Annotated[str, Form(pattern="^(canary|shadow)$")],
        reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:  # fmt: skip
        _platform(op)
        return await apply(rollouts.promote, portal, actor=op.actor, reason=reason, which=which)

    @router.post("/rollouts/{portal}/rollback")
    async def rollback(
        portal: str, op: Admin, reason: Annotated[str, Form(max_length=500)] = ""
    ) -> Response:
        _platform(op)
        return await apply(rollouts.rollback, portal, actor=op.actor, reason=reason)

    return router
