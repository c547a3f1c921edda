"""`/v1/portals/{name}/rollout`: which adapter version a portal's new jobs start on.

Reading needs any key; changing, promoting and rolling back need the `admin` scope, and
every change is an audited event (`rollout.set`, `rollout.promote`, `rollout.rollback`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import ValidationError

from portwright.client.models import (
    ErrorBody,
    FieldProblem,
    ProbePut,
    Rollout,
    RolloutAction,
    RolloutPut,
)
from portwright.gateway._context import SECURED, GatewayContext, IdempotencyKeyDoc, actor_of
from portwright.gateway._errors import ERROR_RESPONSES, ApiError
from portwright.gateway._principal import Principal, current_principal
from portwright.orchestrator import RolloutChange

__all__ = ["rollouts_router"]

Caller = Annotated[Principal, Depends(current_principal)]
PortalName = Annotated[str, Path(min_length=1, max_length=100)]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    403: {"model": ErrorBody, "description": "the key lacks the admin scope"},
    404: {"model": ErrorBody, "description": "no adapter serves that portal"},
    422: {"model": ErrorBody, "description": "a version not installed, or a value out of range"},
}


def rollouts_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(prefix="/v1/portals", tags=["rollouts"], dependencies=SECURED)
    rollouts = ctx.service.rt.rollouts

    def admin(caller: Principal, what: str) -> None:
        if "admin" not in caller.scopes:
            raise ApiError(403, "forbidden", f"{what} a portal's rollout needs the admin scope")

    async def call(fn: Any, *args: Any, **kw: Any) -> Rollout:
        try:
            record = await asyncio.to_thread(fn, *args, **kw)
            view = await asyncio.to_thread(rollouts.describe, record.portal, record.scope)
            return Rollout.model_validate(view)
        except LookupError as exc:
            raise ApiError(404, "unknown_portal", str(exc)) from None
        except ValueError as exc:
            field, _, problem = str(exc).partition(": ")
            raise ApiError(
                422, "invalid_rollout", str(exc),
                fields=[FieldProblem(field=field, problem=problem or str(exc))],
            ) from None  # fmt: skip

    @router.get(
        "/{name}/rollout", response_model=Rollout, responses=RESPONSES, summary="Read a rollout"
    )
    async def get_rollout(
        name: PortalName,
        caller: Caller,
        tenant: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    ) -> Rollout:
        """The portal's rollout (or a tenant's): versions installed, live, canary, shadow,
        break rates over the rollback window and shadow agreement per step."""
        try:
            view = await asyncio.to_thread(rollouts.describe, name, tenant or "")
        except LookupError as exc:
            raise ApiError(404, "unknown_portal", str(exc)) from None
        return Rollout.model_validate(view)

    @router.put(
        "/{name}/rollout",
        response_model=Rollout,
        responses=RESPONSES,
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Change a rollout",
    )
    async def put_rollout(name: PortalName, caller: Caller, body: RolloutPut) -> Rollout:
        """Set the live, canary (percentage and/or tenants) and shadow versions and the
        promotion and rollback thresholds (admin scope; audited)."""
        admin(caller, "changing")
        change = RolloutChange(**body.model_dump(exclude={"tenant", "reason"}, exclude_none=True))
        return await call(
            rollouts.set, name, change, actor=actor_of(caller), reason=body.reason,
            scope=body.tenant or "",
        )  # fmt: skip

    @router.post(
        "/{name}/rollout/promote",
        response_model=Rollout,
        responses=RESPONSES,
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Promote a canary or shadow",
    )
    async def promote(name: PortalName, caller: Caller, body: RolloutAction) -> Rollout:
        """Make the canary (or the shadow) the live version (admin scope; audited)."""
        admin(caller, "promoting in")
        return await call(
            rollouts.promote, name, actor=actor_of(caller), reason=body.reason,
            scope=body.tenant or "", which=body.which,
        )  # fmt: skip

    @router.post(
        "/{name}/rollout/rollback",
        response_model=Rollout,
        responses=RESPONSES,
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Roll a canary back",
    )
    async def rollback(name: PortalName, caller: Caller, body: RolloutAction) -> Rollout:
        """Remove the canary: new jobs start on live; started jobs keep their version."""
        admin(caller, "rolling back")
        return await call(
            rollouts.rollback, name, actor=actor_of(caller), reason=body.reason,
            scope=body.tenant or "",
        )  # fmt: skip

    @router.put(
        "/{name}/probe",
        response_model=Rollout,
        responses=RESPONSES,
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Configure a portal's probe",
    )
    async def put_probe(name: PortalName, caller: Caller, body: ProbePut) -> Rollout:
        """Run the live version's `probe` on this sample input every `every_s` seconds
        (admin scope; audited). A page change marks the portal degraded before jobs meet it."""
        admin(caller, "probing")
        try:
            await asyncio.to_thread(
                rollouts.set_probe, name, body.input, every_s=body.every_s,
                enabled=body.enabled, actor=actor_of(caller),
            )  # fmt: skip
        except LookupError as exc:
            raise ApiError(404, "unknown_portal", str(exc)) from None
        except ValidationError as exc:
            problems = [
                FieldProblem(field=".".join(["input", *map(str, e["loc"])]), problem=e["msg"])
                for e in exc.errors()
            ]
            raise ApiError(
                422, "invalid_probe", "the probe input is not valid", fields=problems
            ) from None
        return Rollout.model_validate(await asyncio.to_thread(rollouts.describe, name))

    return router
