"""The caller's own account: who am I, usage this month, and stored portal credentials."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from portwright.client.models import (
    NAME_PATTERN,
    Credential,
    CredentialList,
    CredentialPut,
    ErrorBody,
    Me,
    Usage,
    UsageLine,
)
from portwright.gateway._context import SECURED, GatewayContext, actor_of
from portwright.gateway._errors import ERROR_RESPONSES, ApiError
from portwright.gateway._plans import current_period, plan_of
from portwright.gateway._principal import Principal, current_principal

__all__ = ["account_router"]

Caller = Annotated[Principal, Depends(current_principal)]
CredentialName = Annotated[str, Path(pattern=NAME_PATTERN, description="e.g. consulate-login")]


def _credential(row: object) -> Credential:
    return Credential.model_validate(row, from_attributes=True)


def account_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["account"], dependencies=SECURED)
    store, vault = ctx.store, ctx.vault

    @router.get("/me", response_model=Me, responses=ERROR_RESPONSES, summary="Who am I")
    async def me(caller: Caller) -> Me:
        tenant = await asyncio.to_thread(store.tenants.get, caller.tenant_id)
        return Me(
            tenant_id=tenant.id,
            tenant=tenant.name,
            plan=tenant.plan,
            key_prefix=caller.key_prefix,
            scopes=sorted(caller.scopes),
            user_id=caller.user_id,
            role=caller.role,
        )

    @router.get("/usage", response_model=Usage, responses=ERROR_RESPONSES, summary="Usage")
    async def usage(
        caller: Caller,
        period: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
    ) -> Usage:
        """Jobs and credits used in a month (default: this one), by engine tier and by key."""
        month = period or current_period()
        plan = plan_of(caller.plan)
        summary = await asyncio.to_thread(store.usage.summary, caller.tenant_id, month)
        return Usage(
            tenant_id=caller.tenant_id,
            plan=plan.name,
            period=month,
            jobs=summary.jobs,
            jobs_limit=plan.jobs_per_month,
            credits=summary.credits,
            credits_limit=plan.credits_per_month,
            by_tier={
                k: UsageLine(requests=v.requests, credits=v.credits)
                for k, v in summary.by_tier.items()
            },
            by_key={
                k: UsageLine(requests=v.requests, credits=v.credits)
                for k, v in summary.by_key.items()
            },
        )

    @router.get(
        "/credentials",
        response_model=CredentialList,
        responses=ERROR_RESPONSES,
        summary="List stored credentials (names only)",
    )
    async def list_credentials(caller: Caller) -> CredentialList:
        rows = await asyncio.to_thread(vault.list, caller.tenant_id)
        return CredentialList(data=[_credential(r) for r in rows])

    @router.put(
        "/credentials/{name}",
        response_model=Credential,
        responses=ERROR_RESPONSES,
        summary="Store or replace a credential",
    )
    async def put_credential(
        name: CredentialName, body: CredentialPut, caller: Caller
    ) -> Credential:
        """Encrypted with your tenant's data key; the value is never returned or logged."""
        row = await asyncio.to_thread(vault.put, caller.tenant_id, name, body.value)
        await asyncio.to_thread(
            store.audit.record,
            actor=actor_of(caller),
            action="credential.put",
            target_type="credential",
            target_id=name,
            before=None,
            after={"revision": row.revision},
            tenant_id=caller.tenant_id,
        )
        return _credential(row)

    @router.delete(
        "/credentials/{name}",
        status_code=204,
        responses={**ERROR_RESPONSES, 404: {"model": ErrorBody, "description": "none stored"}},
        summary="Delete a credential",
    )
    async def delete_credential(name: CredentialName, caller: Caller) -> Response:
        if not await asyncio.to_thread(vault.delete, caller.tenant_id, name):
            raise ApiError(404, "credential_not_found", f"no credential named {name!r}")
        await asyncio.to_thread(
            store.audit.record,
            actor=actor_of(caller),
            action="credential.delete",
            target_type="credential",
            target_id=name,
            before=None,
            after=None,
            tenant_id=caller.tenant_id,
        )
        return Response(status_code=204)

    return router
