"""Stored portal credentials: listed by name, opened only by an operator, every open audited.

The list shows names and revisions, never values. Opening one decrypts it
through the vault for an operator or admin of that tenant (or a platform-wide
one) and writes an audit row naming the actor, tenant and credential — the
value itself never reaches the audit log or the server logs. Viewers get 403.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import Response

from portwright.console._auth import Operator, need
from portwright.console._render import next_query, page
from portwright.store import Store

if TYPE_CHECKING:
    from portwright.resources.vault import Vault

__all__ = ["credentials_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
Acting = Annotated[Operator, Depends(need("operator"))]
PAGE = 50


def credentials_router(store: Store, vault: Vault) -> APIRouter:
    router = APIRouter()

    @router.get("/credentials")
    async def listing(request: Request, op: Viewer, q: str = "", cursor: int = 0) -> Response:
        if cursor < 0:
            raise HTTPException(422, f"cursor: expected 0 or more, got {cursor}")
        found = await asyncio.to_thread(
            store.console.credentials_page, tenant_id=op.tenant_id, text=q.strip(),
            cursor=cursor, limit=PAGE,
        )  # fmt: skip
        more = next_query({"q": q}, found.next_cursor)
        return page(request, "credentials.html", op, nav="credentials", rows=found.rows,
                    total=found.total, q=q, next_query=more)  # fmt: skip

    @router.post("/credentials/reveal")
    async def reveal(
        request: Request, op: Acting,
        tenant_id: Annotated[str, Form()], name: Annotated[str, Form()],
        reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        if op.tenant_id is not None and tenant_id != op.tenant_id:
            raise HTTPException(404, f"name: no credential {name!r} in your tenant")
        try:
            record, value = await asyncio.to_thread(vault.reveal, tenant_id, name)
        except LookupError:
            raise HTTPException(
                404, f"name: no credential {name!r} in tenant {tenant_id}"
            ) from None
        await asyncio.to_thread(
            store.audit.record, actor=op.actor, action="credential.reveal",
            target_type="credential", target_id=name, before=None,
            after={"tenant_id": tenant_id, "name": name, "revision": record.revision},
            reason=reason or "opened in the console", tenant_id=tenant_id,
        )  # fmt: skip
        return page(request, "credential.html", op, nav="credentials", record=record,
                    value=value)  # fmt: skip

    return router
