"""`POST /v1/hooks/{source}`: verify, persist once, acknowledge 202, wake the processor.

Persisting is a group commit: requests arriving while a commit is in flight are
written together in the next transaction (`InboxWriter`), so at hundreds of
webhooks a second the database sees tens of commits, not hundreds of writers
queueing for its lock; an idle gateway still commits each one at once.
"""

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
from portwright.store import InboxRecord, NewInboxEvent, Store

__all__ = ["InboxWriter", "hooks_router"]


class InboxWriter:
    """Group commit for the inbox: `add` waits for the transaction that persists its event."""

    def __init__(self, store: Store, *, max_batch: int = 500) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: list[tuple[NewInboxEvent, asyncio.Future[tuple[InboxRecord, bool]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add(self, event: NewInboxEvent) -> tuple[InboxRecord, bool]:
        """(row, created), once committed; a duplicate returns the first row, created False."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[InboxRecord, bool]] = loop.create_future()
        self._pending.append((event, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name="inbox-writer")
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: len(batch)]
            events = [event for event, _ in batch]
            results: list[tuple[InboxRecord, bool] | BaseException] = []
            try:
                results.extend(await asyncio.to_thread(self.store.inbox.add_many, events))
            except Exception:  # noqa: BLE001 - one at a time, so a bad event fails alone
                results = []
                for event in events:
                    try:
                        one = await asyncio.to_thread(self.store.inbox.add_many, [event])
                        results.append(one[0])
                    except Exception as exc:  # noqa: BLE001 - that request's 500
                        results.append(exc)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the request went away (client disconnected)
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def hooks_router(
    store: Store,
    sources: Mapping[str, WebhookSource],
    processor: InboxProcessor,
    *,
    tolerance_s: float,
    tenant_ids: Mapping[str, str | None],
    writer: InboxWriter | None = None,
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    writer = writer or InboxWriter(store)
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
            503: {
                "model": ErrorBody,
                "description": "the database is unavailable: not persisted, send it again",
            },
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
        row, created = await writer.add(
            NewInboxEvent(
                source=source,
                external_id=event.external_id[:200],
                event_id=event.event_id[:255],
                checksum=checksum,
                payload=body,
                event_type=event.event_type[:200],
                tenant_id=tenant_ids.get(source),
            )
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
