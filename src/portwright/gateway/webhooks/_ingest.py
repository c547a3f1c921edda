"""`POST /v1/hooks/{source}`: verify, persist once, acknowledge 202, wake the processor."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from portwright.client._models import ErrorBody, FieldProblem, HookAck
from portwright.gateway._errors import ApiError
from portwright.gateway.webhooks._processor import InboxProcessor
from portwright.gateway.webhooks._schemes import SignatureError, verify
from portwright.settings import WebhookSource
from portwright.store import Store

__all__ = ["hooks_router"]


def hooks_router(
    store: Store,
    sources: Mapping[str, WebhookSource],
    processor: InboxProcessor,
    *,
    tolerance_s: float,
    tenant_ids: Mapping[str, str | None],
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    secrets = {
        name: [s.get_secret_value() for s in source.secrets] for name, source in sources.items()
    }

    @router.post(
        "/v1/hooks/{source}",
        status_code=202,
        response_model=HookAck,
        summary="Receive a signed webhook",
        responses={
            200: {"model": HookAck, "description": "a duplicate, acknowledged again"},
            400: {"model": ErrorBody, "description": "a signature header is missing or malformed"},
            401: {"model": ErrorBody, "description": "bad signature, or timestamp out of window"},
            404: {"model": ErrorBody, "description": "unknown source"},
            409: {"model": ErrorBody, "description": "event id reused with a different payload"},
            413: {"model": ErrorBody, "description": "body over the size limit"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def receive(source: str, request: Request) -> JSONResponse:
        """Verified in constant time within the clock-skew window, deduplicated on
        (source, external id, event id), persisted, then acknowledged; processing
        happens afterwards, from the persisted row."""
        config = sources.get(source)
        if config is None:
            raise ApiError(
                404,
                "unknown_source",
                f"no webhook source {source!r}",
                fields=[FieldProblem(field="source", problem="not configured")],
                known=sorted(sources),
            )
        body = await request.body()
        try:
            event = verify(
                config.scheme,
                body,
                dict(request.headers),
                secrets[source],
                tolerance_s=tolerance_s,
            )
        except SignatureError as exc:
            raise ApiError(
                exc.status,
                "bad_signature" if exc.status == 401 else "bad_webhook",
                str(exc),
                fields=[FieldProblem(field=exc.field, problem=exc.problem)],
            ) from None
        checksum = hashlib.sha256(body).hexdigest()
        row, created = await asyncio.to_thread(
            store.inbox.add,
            source=source,
            external_id=event.external_id[:200],
            event_id=event.event_id[:255],
            checksum=checksum,
            payload=body,
            event_type=event.event_type[:200],
            tenant_id=tenant_ids.get(source),
        )
        if created:
            processor.wake()
            return JSONResponse(HookAck(id=row.id, duplicate=False).model_dump(), status_code=202)
        if row.checksum != checksum:
            raise ApiError(
                409,
                "event_id_reused",
                f"event {event.event_id}: already received with a different payload",
            )
        return JSONResponse(HookAck(id=row.id, duplicate=True).model_dump(), status_code=200)

    return router
