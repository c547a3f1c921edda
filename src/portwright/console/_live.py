"""Server-sent events: a `change` event whenever anything the operator may see changes
(see `portwright.webauth.change_stream`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import StreamingResponse

from portwright.console._auth import Operator, need
from portwright.store import Store
from portwright.webauth import change_stream

__all__ = ["live_router"]


def live_router(store: Store) -> APIRouter:
    router = APIRouter()

    @router.get("/live")
    async def live(
        request: Request, op: Annotated[Operator, Depends(need("viewer"))]
    ) -> StreamingResponse:
        return change_stream(request, lambda: store.console.fingerprint(tenant_id=op.tenant_id))

    return router
