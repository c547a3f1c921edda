"""`/v1/jobs/{id}/evidence` and `/v1/jobs/{id}/trace`: what a job left behind, per tenant.

Evidence (screenshots, DOM snapshots, step logs, HTTP summaries, Playwright
traces) lives in the blob store; these routes list it and hand it out to the
job's own tenant only. Another tenant's job is a 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from portwright.client.models import ErrorBody, Evidence, EvidenceList
from portwright.gateway._context import SECURED, GatewayContext
from portwright.gateway._errors import ERROR_RESPONSES, ApiError
from portwright.gateway._principal import Principal, current_principal
from portwright.store import EvidenceRecord

__all__ = ["evidence_router"]

JobId = Annotated[str, Path(min_length=1, max_length=64, description="a job id")]
EvidenceId = Annotated[str, Path(min_length=1, max_length=64, description="an evidence id")]
Caller = Annotated[Principal, Depends(current_principal)]
# Portal HTML is untrusted: served as a download target, never as a live page.
_UNTRUSTED = {
    "content-security-policy": "default-src 'none'; sandbox",
    "x-content-type-options": "nosniff",
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    404: {"model": ErrorBody, "description": "no such job (or evidence) in your tenant"},
}
_BINARY: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    200: {"content": {"application/octet-stream": {}}, "description": "the stored bytes"},
}


def _view(row: EvidenceRecord) -> Evidence:
    return Evidence(
        id=row.id,
        job_id=row.job_id,
        step=row.step,
        kind=row.kind,
        content_type=row.content_type,
        size=row.size,
        meta=row.meta or {},
        created_at=row.created_at,
        href=f"/v1/jobs/{row.job_id}/evidence/{row.id}",
    )


def evidence_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(prefix="/v1/jobs", tags=["evidence"], dependencies=SECURED)
    service, store = ctx.service, ctx.store

    async def rows_of(job_id: str, tenant_id: str) -> list[EvidenceRecord]:
        await service.get(job_id, tenant_id=tenant_id)  # 404 unless the caller's job
        return await asyncio.to_thread(store.jobs.evidence, job_id, tenant_id=tenant_id)

    async def blob(row: EvidenceRecord, filename: str) -> Response:
        data = await asyncio.to_thread(service.rt.blobs.get, row.blob_key)
        headers = {**_UNTRUSTED, "content-disposition": f'attachment; filename="{filename}"'}
        return Response(data, media_type=row.content_type, headers=headers)

    @router.get(
        "/{job_id}/evidence",
        response_model=EvidenceList,
        responses=_NOT_FOUND,
        summary="List a job's evidence",
    )
    async def list_evidence(job_id: JobId, caller: Caller) -> EvidenceList:
        """Screenshots, DOM snapshots, step logs and traces, oldest first, each with its link."""
        return EvidenceList(data=[_view(r) for r in await rows_of(job_id, caller.tenant_id)])

    @router.get(
        "/{job_id}/evidence/{evidence_id}",
        response_class=Response,
        responses=_BINARY,
        summary="Download one piece of evidence",
    )
    async def get_evidence(job_id: JobId, evidence_id: EvidenceId, caller: Caller) -> Response:
        for row in await rows_of(job_id, caller.tenant_id):
            if row.id == evidence_id:
                return await blob(row, f"{row.id}-{row.kind}")
        raise ApiError(404, "evidence_not_found", f"evidence_id: no evidence {evidence_id!r}")

    @router.get(
        "/{job_id}/trace",
        response_class=Response,
        responses=_BINARY,
        summary="Download the job's Playwright trace",
    )
    async def get_trace(job_id: JobId, caller: Caller) -> Response:
        """The latest trace zip (open it with `playwright show-trace`); 404 when the job
        ran no browser step with tracing on."""
        traces = [r for r in await rows_of(job_id, caller.tenant_id) if r.kind == "trace"]
        if not traces:
            raise ApiError(404, "trace_not_found", f"job_id: job {job_id} has no trace")
        return await blob(traces[-1], f"{job_id}-trace.zip")

    return router
