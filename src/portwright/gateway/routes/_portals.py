"""`/v1/portals`: every portal's health; pausing one or ending its cooldown needs a key with
the `admin` scope, extending a cooldown the `operator` scope (every change audited)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from portwright.client.models import (
    ControlRequest,
    CooldownRequest,
    ErrorBody,
    Portal,
    PortalList,
)
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

    async def known(name: str) -> None:
        try:
            await asyncio.to_thread(service.store.portals.get, name)
        except LookupError:
            names = sorted(p.name for p in await service.portals())
            raise ApiError(404, "unknown_portal", f"no portal {name!r}", known=names) from None

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
            await known(name)
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

    @router.post(
        "/{name}/cooldown",
        response_model=Portal,
        responses={
            **ERROR_RESPONSES,
            403: {"model": ErrorBody, "description": "the key lacks the operator scope"},
            404: {"model": ErrorBody, "description": "unknown portal (`known` lists them)"},
        },
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Extend a portal's cooldown",
    )
    async def extend_cooldown(name: PortalName, body: CooldownRequest, caller: Caller) -> Portal:
        """Cool the portal down for `seconds` from now: its jobs wait before their next step
        (operator scope). A cooldown that already lasts longer is left as it is; an
        extension is audited as `portal.cooldown` with cause `operator`."""
        if "operator" not in caller.scopes:
            raise ApiError(
                403, "forbidden", "extending a portal's cooldown needs the operator scope"
            )
        await known(name)
        record = await service.extend_portal_cooldown(
            name, seconds=body.seconds, actor=actor_of(caller), reason=body.reason
        )
        return portal_view(record)

    @router.post(
        "/{name}/cooldown/end",
        response_model=Portal,
        responses={
            **ERROR_RESPONSES,
            403: {"model": ErrorBody, "description": "the key lacks the admin scope"},
            404: {"model": ErrorBody, "description": "unknown portal (`known` lists them)"},
        },
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="End a portal's cooldown now",
    )
    async def end_cooldown(
        name: PortalName, caller: Caller, body: ControlRequest | None = None
    ) -> Portal:
        """End the portal's cooldown now; its waiting jobs go on within 10 s (admin scope:
        the portal is shared by every tenant, and a cooldown usually honours its Retry-After).
        Audited
        as `portal.cooldown` with cause `operator` and `ended`; a portal not cooling down is
        left as it is."""
        if "admin" not in caller.scopes:
            raise ApiError(403, "forbidden", "ending a portal's cooldown needs the admin scope")
        await known(name)
        reason = body.reason if body is not None else ""
        record = await service.end_portal_cooldown(name, actor=actor_of(caller), reason=reason)
        return portal_view(record)

    return router
