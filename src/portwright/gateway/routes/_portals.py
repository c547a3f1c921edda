"""`/v1/portals`: every portal's health; pausing one needs a key with the `admin` scope."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from portwright.client.models import ControlRequest, ErrorBody, Portal, PortalList
from portwright.gateway._context import SECURED, GatewayContext, IdempotencyKeyDoc, actor_of
from portwright.gateway._errors import ERROR_RESPONSES, ApiError
from portwright.gateway._principal import Principal, current_principal
from portwright.gateway.routes._intel import add_intel_routes
from portwright.gateway.routes._views import portal_view

__all__ = ["portals_router"]

Caller = Annotated[Principal, Depends(current_principal)]
PortalName = Annotated[str, Path(min_length=1, max_length=100)]


def portals_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(prefix="/v1/portals", tags=["portals"], dependencies=SECURED)
    service = ctx.service

    @router.get("", response_model=PortalList, responses=ERROR_RESPONSES, summary="List portals")
    async def list_portals(caller: Caller) -> PortalList:
        """Every portal with its pause, cooldown and degraded state."""
        return PortalList(data=[portal_view(p) for p in await service.portals()])

    def steer(action: str) -> Any:
        async def handler(
            name: PortalName, caller: Caller, body: ControlRequest | None = None
        ) -> Portal:
            if "admin" not in caller.scopes:
                raise ApiError(
                    403,
                    "forbidden",
                    f"pausing or resuming a portal needs the admin scope ({action})",
                )
            try:
                await asyncio.to_thread(service.store.portals.get, name)
            except LookupError:
                known = sorted(p.name for p in await service.portals())
                raise ApiError(404, "unknown_portal", f"no portal {name!r}", known=known) from None
            reason = body.reason if body is not None else ""
            method = service.pause_portal if action == "pause" else service.resume_portal
            return portal_view(await method(name, actor=actor_of(caller), reason=reason))

        handler.__name__ = f"{action}_portal"
        handler.__doc__ = f"{action.capitalize()} every job of the portal (admin scope; audited)."
        return handler

    for action in ("pause", "resume"):
        router.add_api_route(
            f"/{{name}}/{action}",
            steer(action),
            methods=["POST"],
            response_model=Portal,
            responses={
                **ERROR_RESPONSES,
                403: {"model": ErrorBody, "description": "the key lacks the admin scope"},
                404: {"model": ErrorBody, "description": "unknown portal (`known` lists them)"},
            },
            dependencies=[Depends(IdempotencyKeyDoc)],
            summary=f"{action.capitalize()} a portal",
        )
    add_intel_routes(router, ctx)
    return router
