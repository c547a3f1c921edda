"""`/v1/jobs/{id}/items` and `/report`: a fan-out job's items, staff retries, the report."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import Field

from portwright.client.models import ErrorBody, JobList, Strict
from portwright.gateway._context import SECURED, GatewayContext, IdempotencyKeyDoc, actor_of
from portwright.gateway._errors import ERROR_RESPONSES
from portwright.gateway._principal import Principal, current_principal
from portwright.gateway.routes._views import job_view
from portwright.orchestrator import ConflictError
from portwright.reports import build_report, to_csv, to_html, to_json

__all__ = ["RetryItems", "items_router"]

JobId = Annotated[str, Path(min_length=1, max_length=64, description="a fan-out job's id")]
Caller = Annotated[Principal, Depends(current_principal)]


class RetryItems(Strict):
    items: list[str] | None = Field(
        None, max_length=1000, description="item keys to retry (default: every failed item)"
    )


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such job in your tenant"}
}
NOTHING_TO_RETRY: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "no failed item to retry"}
}


def items_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(prefix="/v1/jobs", tags=["fan-out"], dependencies=SECURED)
    service = ctx.service
    registry = service.rt.registry  # masks the secret input fields of each adapter

    @router.get(
        "/{job_id}/items",
        response_model=JobList,
        responses={**ERROR_RESPONSES, **NOT_FOUND},
        summary="A fan-out job's items",
    )
    async def items(job_id: JobId, caller: Caller) -> JobList:
        """Each item's latest attempt, in order; an item's log is `GET /v1/jobs/{item}/events`."""
        rows = await service.items(job_id, tenant_id=caller.tenant_id)
        return JobList(data=[job_view(r, registry) for r in rows])

    @router.post(
        "/{job_id}/items/retry",
        status_code=202,
        response_model=JobList,
        responses={**ERROR_RESPONSES, **NOT_FOUND, **NOTHING_TO_RETRY},
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Retry failed items",
    )
    async def retry_items(
        job_id: JobId, caller: Caller, body: RetryItems | None = None
    ) -> JSONResponse:
        """Run the failed items again (all, or those named); succeeded items are untouched."""
        keys = body.items if body is not None else None
        retried = await service.retry_items(
            job_id, actor=actor_of(caller), item_keys=keys, tenant_id=caller.tenant_id
        )
        if not retried:
            raise ConflictError(f"job {job_id} has no failed items to retry")
        listing = JobList(data=[job_view(r, registry) for r in retried])
        return JSONResponse(listing.model_dump(mode="json"), status_code=202)

    @router.get(
        "/{job_id}/report",
        responses={
            **ERROR_RESPONSES,
            **NOT_FOUND,
            200: {
                "content": {"application/json": {}, "text/csv": {}, "text/html": {}},
                "description": "every item accounted for: outcome, reason, attempts, timing",
            },
        },
        response_class=Response,
        summary="A fan-out job's report",
    )
    async def report(
        job_id: JobId,
        caller: Caller,
        format: Annotated[Literal["json", "csv", "html"], Query()] = "json",
    ) -> Response:
        """Download the report as JSON, CSV or a readable HTML page with a chart."""
        built = await asyncio.to_thread(
            build_report, service.store, job_id, tenant_id=caller.tenant_id
        )
        if format == "csv":
            headers = {"content-disposition": f'attachment; filename="{job_id}.csv"'}
            return PlainTextResponse(to_csv(built), media_type="text/csv", headers=headers)
        if format == "html":
            return HTMLResponse(to_html(built))
        return Response(to_json(built), media_type="application/json")

    return router
