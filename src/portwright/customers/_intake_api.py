"""`/v1/intake`: the tenant's intake forms over the API (the portal's `/app/intake` beside it).

Reading is open to every credential of the tenant; saving to API keys and owners (a
member's access token is a 403, as in the portal)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, Field

from portwright.client.models import ErrorBody, FieldProblem
from portwright.customers._intake import IntakeError, Intakes, form_fields
from portwright.gateway.kernel import (
    ERROR_RESPONSES,
    SECURED,
    ApiError,
    Principal,
    current_principal,
)

__all__ = ["intake_router"]

Caller = Annotated[Principal, Depends(current_principal)]
FormName = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", description="e.g. business-profile")
]


class IntakeFieldView(BaseModel):
    name: str = Field(description="dotted for nested fields, e.g. address.city")
    label: str
    required: bool


class IntakeView(BaseModel):
    name: str
    title: str
    description: str
    adapters: list[str] = Field(description="the adapters whose jobs read this form")
    fields: list[IntakeFieldView]
    data: dict[str, Any] | None = Field(description="what the tenant saved; null if nothing yet")
    updated_at: float | None


class IntakeList(BaseModel):
    data: list[IntakeView]


class IntakeSaved(IntakeView):
    jobs_told: int = Field(description="unfinished jobs of the tenant told the form is saved")


_NO_FORM: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no intake form of that name is installed"}
}
_OWNERS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "a member's token: saving needs the owner role"}
}


def intake_router(intakes: Intakes) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["account"], dependencies=SECURED)
    store = intakes.service.store

    async def view(caller: Principal, name: str) -> IntakeView:
        found = intakes.form(name)
        if found is None:
            known = sorted(intakes.forms())
            raise ApiError(404, "not_found", f"form: no intake form {name!r}", known=known)
        form, adapters = found
        return IntakeView(
            name=form.name,
            title=form.title,
            description=form.description,
            adapters=adapters,
            fields=[
                IntakeFieldView(name=f.name, label=f.label, required=f.required)
                for f in form_fields(form.model)
            ],
            data=await intakes.saved(caller.tenant_id, name),
            updated_at=await asyncio.to_thread(store.intake.updated_at, caller.tenant_id, name),
        )

    @router.get(
        "/intake", response_model=IntakeList, responses=ERROR_RESPONSES, summary="Intake forms"
    )
    async def list_forms(caller: Caller) -> IntakeList:
        """The intake forms of the installed adapters, with what your tenant saved."""
        return IntakeList(data=[await view(caller, name) for name in intakes.forms()])

    @router.get(
        "/intake/{form}",
        response_model=IntakeView,
        responses={**ERROR_RESPONSES, **_NO_FORM},
        summary="An intake form",
    )
    async def get_form(form: FormName, caller: Caller) -> IntakeView:
        return await view(caller, form)

    @router.put(
        "/intake/{form}",
        response_model=IntakeSaved,
        responses={**ERROR_RESPONSES, **_NO_FORM, **_OWNERS},
        summary="Fill in an intake form",
    )
    async def put_form(
        form: FormName, caller: Caller, body: Annotated[dict[str, Any], Body()]
    ) -> IntakeSaved:
        """Validated as the jobs validate it: a 422 names each missing or bad field and
        nothing is stored. Saved, it wakes your unfinished jobs waiting for it."""
        await view(caller, form)  # 404 for an unknown form
        if caller.role is not None and caller.role != "owner":
            raise ApiError(403, "forbidden", "role: saving an intake form needs the owner role")
        try:
            _, told = await intakes.save(caller.tenant_id, form, body, actor=caller.actor)
        except IntakeError as exc:
            raise ApiError(
                422,
                "invalid_intake",
                str(exc),
                fields=[FieldProblem(field=f, problem=p) for f, p in exc.problems],
            ) from None
        return IntakeSaved(**(await view(caller, form)).model_dump(), jobs_told=told)

    return router
