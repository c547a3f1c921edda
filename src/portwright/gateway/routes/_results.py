"""`/v1/results/{evidence_id}`: a stored result behind a signed, time-limited link.

The link (`result_url` in a job's output and in its result webhook) carries its own
authorization: an HMAC over the evidence id and the expiry (`portwright.results`), so
it works without an API key — in a browser, a curl, a customer's pipeline — until it
expires. A bad signature is 403, an expired link 410. The bytes come from the blob
store, or from the database while they are held there (the blob store was down).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from portwright.client.models import ErrorBody
from portwright.gateway._context import GatewayContext
from portwright.gateway._errors import ApiError
from portwright.results import LinkError, ResultLinks

__all__ = ["results_router"]

EvidenceId = Annotated[str, Path(min_length=1, max_length=64, description="a stored result")]
_UNTRUSTED = {  # portal HTML is untrusted: a download, never a live page
    "content-security-policy": "default-src 'none'; sandbox",
    "x-content-type-options": "nosniff",
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "the stored bytes"},
    403: {"model": ErrorBody, "description": "the signature does not match"},
    404: {"model": ErrorBody, "description": "no such result (purged by retention)"},
    410: {"model": ErrorBody, "description": "the link has expired"},
}


def results_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(tags=["results"])

    def links() -> ResultLinks:
        signer = ctx.service.rt.links
        if signer is None:
            raise ApiError(503, "unavailable", "result links: the runtime is not started")
        return signer

    @router.get(
        "/v1/results/{evidence_id}",
        response_class=Response,
        responses=_RESPONSES,
        summary="Download a stored result (signed link)",
    )
    async def download(
        evidence_id: EvidenceId,
        expires: Annotated[str, Query(max_length=12)] = "",
        signature: Annotated[str, Query(max_length=128)] = "",
    ) -> Response:
        """What a `result_url` points to; no API key: the link's signature is the key."""
        try:
            links().verify(evidence_id, expires, signature)
        except LinkError as exc:
            status = 410 if "expired" in str(exc) else 403
            raise ApiError(
                status, "link_expired" if status == 410 else "bad_link", str(exc)
            ) from None
        stored = await asyncio.to_thread(ctx.store.held.locate, evidence_id)
        if stored is None:
            raise ApiError(404, "result_not_found", f"evidence_id: no result {evidence_id!r}")
        data = stored.data
        if data is None:
            try:
                data = await asyncio.to_thread(ctx.service.rt.blobs.get, stored.blob_key)
            except KeyError:
                raise ApiError(
                    404, "result_not_found", f"evidence_id: result {evidence_id!r} is gone"
                ) from None
        filename = f"{stored.job_id}-{stored.kind}"
        headers = {**_UNTRUSTED, "content-disposition": f'attachment; filename="{filename}"'}
        return Response(data, media_type=stored.content_type, headers=headers)

    return router
