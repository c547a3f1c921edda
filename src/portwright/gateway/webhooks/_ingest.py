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

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from portwright.client.models import ErrorBody, FieldProblem, HookAck
from portwright.gateway._errors import ApiError
from portwright.gateway.webhooks._processor import InboxProcessor
from portwright.gateway.webhooks._schemes import SignatureError, verify
from portwright.settings import WebhookSource
from portwright.store import InboxRecord, NewInboxEvent, Store

__all__ = ["HOOK_PATH", "HookReceiver", "InboxWriter", "mount_hooks"]

HOOK_PATH = "/v1/hooks/{source}"


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


class HookReceiver:
    """The ingest path: verify in constant time within the clock-skew window, deduplicate on
    (source, external id, event id), persist, then acknowledge; processing happens afterwards,
    from the persisted row."""

    def __init__(
        self,
        sources: Mapping[str, WebhookSource],
        processor: InboxProcessor,
        writer: InboxWriter,
        *,
        tolerance_s: float,
        tenant_ids: Mapping[str, str | None],
    ) -> None:
        self.sources = sources
        self.processor = processor
        self.writer = writer
        self.tolerance_s = tolerance_s
        self.tenant_ids = tenant_ids
        self.secrets = {
            name: [s.get_secret_value() for s in source.secrets] for name, source in sources.items()
        }

    async def __call__(self, source: str, request: Request) -> JSONResponse:
        config = self.sources.get(source)
        if config is None:
            raise ApiError(
                404,
                "unknown_source",
                f"no webhook source {source!r}",
                fields=[FieldProblem(field="source", problem="not configured")],
                known=sorted(self.sources),
            )
        body = await request.body()
        try:
            event = verify(
                config.scheme,
                body,
                dict(request.headers),
                self.secrets[source],
                tolerance_s=self.tolerance_s,
                require_timestamp=config.require_timestamp,
            )
        except SignatureError as exc:
            raise ApiError(
                exc.status,
                "bad_signature" if exc.status == 401 else "bad_webhook",
                str(exc),
                fields=[FieldProblem(field=exc.field, problem=exc.problem)],
            ) from None
        checksum = hashlib.sha256(body).hexdigest()
        row, created = await self.writer.add(
            NewInboxEvent(
                source=source,
                external_id=event.external_id[:200],
                event_id=event.event_id[:255],
                checksum=checksum,
                payload=body,
                event_type=event.event_type[:200],
                tenant_id=self.tenant_ids.get(source),
            )
        )
        if created:
            self.processor.wake()
            return JSONResponse({"id": row.id, "duplicate": False}, status_code=202)
        if row.checksum != checksum:
            raise ApiError(
                409,
                "event_id_reused",
                f"event {event.event_id}: already received with a different payload",
            )
        return JSONResponse({"id": row.id, "duplicate": True}, status_code=200)


class _HookRoute(Route):
    """The plain Starlette route that serves `POST /v1/hooks/{source}` in front of the
    documented one: no dependency injection or response-model pass on the hottest path
    (a shop's burst). It names itself in the scope, as FastAPI's routes do, so metrics and
    traces see the route's template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def mount_hooks(
    app: FastAPI,
    store: Store,
    sources: Mapping[str, WebhookSource],
    processor: InboxProcessor,
    *,
    tolerance_s: float,
    tenant_ids: Mapping[str, str | None],
    writer: InboxWriter | None = None,
) -> HookReceiver:
    """Serve `POST /v1/hooks/{source}` on `app`: a FastAPI route describes it in the OpenAPI
    document, and the same receiver answers it through a plain route placed first."""
    receiver = HookReceiver(
        sources,
        processor,
        writer or InboxWriter(store),
        tolerance_s=tolerance_s,
        tenant_ids=tenant_ids,
    )
    app.include_router(_documented(receiver))

    async def endpoint(request: Request) -> Response:
        return await receiver(request.path_params["source"], request)

    app.router.routes.insert(0, _HookRoute(HOOK_PATH, endpoint, methods=["POST"]))
    return receiver


def _documented(receiver: HookReceiver) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(
        HOOK_PATH,
        status_code=202,
        response_model=HookAck,
        summary="Receive a signed webhook",
        responses={
            200: {"model": HookAck, "description": "a duplicate, acknowledged again"},
            400: {
                "model": ErrorBody,
                "description": "a signature header is missing or malformed, or the body is not "
                "JSON within limits (nesting depth) or lacks what its scheme must sign",
            },
            401: {
                "model": ErrorBody,
                "description": "bad signature, timestamp missing (where required) or out of "
                "window, or a header that disagrees with the signed body",
            },
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
        return await receiver(source, request)

    return router
