"""Webhook endpoints, deliveries with their attempts, dead letters and replay (per tenant)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from portwright._ids import new_id
from portwright.delivery._signing import SecretSealer, new_secret, seal_endpoint_secret
from portwright.gateway.kernel import (
    ERROR_RESPONSES,
    SECURED,
    ApiError,
    Principal,
    current_principal,
)
from portwright.store import DeliveryFilter, EndpointRecord, Store

__all__ = ["delivery_router"]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "not found in your tenant"}}

CheckUrl = Callable[[str, str], Awaitable[None]]


class EndpointIn(BaseModel):
    url: str = Field(max_length=2000)
    topics: list[str] = Field(default_factory=list, description="e.g. job.*; empty: all")
    platform: str | None = None
    kind: str = Field("webhook", pattern="^(webhook|shop-status)$")
    max_attempts: int = Field(8, ge=1, le=50)
    secret: str | None = Field(None, pattern="^whsec_[A-Za-z0-9+/=]{16,}$")


class ReplayIn(BaseModel):
    endpoint_id: str | None = None
    platform: str | None = None
    topic: str | None = None
    since: float | None = None
    until: float | None = None


def _endpoint(e: EndpointRecord, *, secret: str | None = None) -> dict[str, Any]:
    """The endpoint's view; the signing secret (in clear) only when just made."""
    view = asdict(e)
    view.pop("secrets")
    if secret is not None:
        view["secret"] = secret
    return view


def delivery_router(
    store: Store, check_url: CheckUrl, wake: Callable[[], None], sealer: SecretSealer
) -> APIRouter:
    router = APIRouter(
        prefix="/v1", tags=["delivery"], dependencies=SECURED, responses=ERROR_RESPONSES
    )
    caller_dep = Depends(current_principal)

    def owned(caller: Principal, endpoint_id: str) -> EndpointRecord:
        try:
            endpoint = store.endpoints.get(endpoint_id)
        except LookupError:
            endpoint = None
        if endpoint is None or endpoint.tenant_id != caller.tenant_id:
            raise ApiError(404, "not_found", f"no endpoint {endpoint_id}")
        return endpoint

    @router.post("/webhook-endpoints", status_code=201, summary="Add a webhook endpoint")
    async def create(body: EndpointIn, caller: Principal = caller_dep) -> dict[str, Any]:
        """Events of the caller's tenant matching `topics` (and `platform`) go to `url`, signed."""
        await check_url("url", body.url)
        endpoint_id, secret = new_id("wep"), body.secret or new_secret()
        sealed = await asyncio.to_thread(
            seal_endpoint_secret, sealer, caller.tenant_id, endpoint_id, secret
        )
        endpoint = await asyncio.to_thread(
            store.endpoints.create,
            tenant_id=caller.tenant_id,
            url=body.url,
            secrets=[sealed],
            topics=body.topics,
            platform=body.platform,
            kind=body.kind,
            max_attempts=body.max_attempts,
            endpoint_id=endpoint_id,
        )
        return _endpoint(endpoint, secret=secret)

    @router.get("/webhook-endpoints", summary="List webhook endpoints")
    async def list_endpoints(caller: Principal = caller_dep) -> dict[str, Any]:
        found = await asyncio.to_thread(store.endpoints.search, tenant_id=caller.tenant_id)
        return {"data": [_endpoint(e) for e in found]}

    @router.post(
        "/webhook-endpoints/{endpoint_id}/rotate",
        responses=NOT_FOUND,
        summary="Rotate the signing secret",
    )
    async def rotate(endpoint_id: str, caller: Principal = caller_dep) -> dict[str, Any]:
        """Sign with a new secret from now on, and with the old one too until the next rotation."""
        await asyncio.to_thread(owned, caller, endpoint_id)
        secret = new_secret()
        sealed = await asyncio.to_thread(
            seal_endpoint_secret, sealer, caller.tenant_id, endpoint_id, secret
        )
        await asyncio.to_thread(store.endpoints.rotate_secret, endpoint_id, sealed)
        return {"id": endpoint_id, "secret": secret}

    @router.delete(
        "/webhook-endpoints/{endpoint_id}",
        status_code=204,
        responses=NOT_FOUND,
        summary="Remove a webhook endpoint",
    )
    async def remove(endpoint_id: str, caller: Principal = caller_dep) -> Response:
        """Nothing more is sent to it; deliveries not yet made end dead ("endpoint removed")."""
        if not await asyncio.to_thread(
            store.endpoints.delete, endpoint_id, tenant_id=caller.tenant_id
        ):
            raise ApiError(404, "not_found", f"no endpoint {endpoint_id}")
        return Response(status_code=204)

    def _filter(caller: Principal, **kw: Any) -> DeliveryFilter:
        return DeliveryFilter(tenant_id=caller.tenant_id, **kw)

    @router.get("/deliveries", summary="Deliveries (status, endpoint, platform, topic, time)")
    async def deliveries(
        status: str | None = None,
        endpoint_id: str | None = None,
        platform: str | None = None,
        topic: str | None = None,
        since: float | None = None,
        until: float | None = None,
        caller: Principal = caller_dep,
    ) -> dict[str, Any]:
        where = _filter(
            caller,
            endpoint_id=endpoint_id,
            platform=platform,
            topic=topic,
            since=since,
            until=until,
        )
        found = await asyncio.to_thread(store.deliveries.search, where, status=status)
        return {"data": [asdict(d) for d in found]}

    @router.get(
        "/deliveries/{delivery_id}/attempts", responses=NOT_FOUND, summary="A delivery's attempts"
    )
    async def attempts(delivery_id: str, caller: Principal = caller_dep) -> dict[str, Any]:
        try:
            delivery = await asyncio.to_thread(store.deliveries.get, delivery_id)
        except LookupError:
            raise ApiError(404, "not_found", f"no delivery {delivery_id}") from None
        if delivery.tenant_id != caller.tenant_id:
            raise ApiError(404, "not_found", f"no delivery {delivery_id}")
        found = await asyncio.to_thread(store.deliveries.attempts, delivery_id)
        return {"delivery": asdict(delivery), "data": [asdict(a) for a in found]}

    @router.post("/dead-letters/replay", summary="Replay dead letters")
    async def replay(body: ReplayIn, caller: Principal = caller_dep) -> dict[str, int]:
        """Put the tenant's matching dead letters back in the queue, with fresh attempts."""
        where = _filter(caller, **body.model_dump())
        count = await asyncio.to_thread(store.deliveries.replay, where)
        wake()
        return {"replayed": count}

    return router
