"""Dashboard, jobs (list, page, fan-out items, report), evidence and the audit page."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import Operator, need
from portwright.console._browser_live import ENDED, browser_possible
from portwright.console._render import PREFIX, next_query, page
from portwright.console._views import dashboard, mask
from portwright.orchestrator import CREDENTIALS_NOTE, JobService
from portwright.reports import build_report, to_csv, to_html, to_json
from portwright.store import DeliveryFilter, JobNotFoundError

__all__ = ["pages_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
Acting = Annotated[Operator, Depends(need("operator"))]
UNTRUSTED_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PAGE = 50
DEAD_SHOWN = 500  # the dead-letters page's own limit
STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled")


def pages_router(service: JobService) -> APIRouter:  # noqa: PLR0915 (one route each)
    router = APIRouter()
    store = service.store

    async def job_or_404(job_id: str, op: Operator):  # type: ignore[no-untyped-def]
        try:
            return await service.get(job_id, tenant_id=op.tenant_id)
        except JobNotFoundError as exc:
            raise HTTPException(404, f"no job {job_id}") from exc

    @router.get("/")
    async def home(request: Request, op: Viewer) -> Response:
        zone = request.app.state.display_tz
        stats = await asyncio.to_thread(dashboard, store, tenant_id=op.tenant_id, zone=zone)
        return page(request, "dashboard.html", op, nav="dashboard", stats=stats,
                    live_template="_dashboard_live.html")  # fmt: skip

    @router.get("/jobs")
    async def jobs(
        request: Request, op: Viewer, q: str = "", status: str = "", portal: str = "",
        adapter: str = "", tenant: str = "", items: str = "", credential: str = "",
        cursor: str = "",
    ) -> Response:  # fmt: skip
        names = await asyncio.to_thread(store.console.tenant_names)
        used = (CREDENTIALS_NOTE, credential.strip()) if credential.strip() else None
        found = await asyncio.to_thread(
            store.console.jobs_page, tenant_id=op.tenant_id, text=q.strip(),
            status=status or None, portal=portal or None, adapter=adapter or None,
            of_tenant=(tenant or None) if op.platform_wide else None, top_level=not items,
            noted=used, cursor=cursor or None, limit=PAGE,
        )  # fmt: skip
        filters = {"q": q, "status": status, "portal": portal, "adapter": adapter,
                   "tenant": tenant, "items": items, "credential": credential}  # fmt: skip
        return page(request, "jobs.html", op, nav="jobs", jobs=found.rows, total=found.total,
                    next_cursor=found.next_cursor, item_counts=found.items, statuses=STATUSES,
                    tenant_names=names, filters=filters,
                    next_query=next_query(filters, found.next_cursor),
                    live_template="_jobs_live.html")  # fmt: skip

    @router.get("/jobs/{job_id}")
    async def job_page(request: Request, job_id: str, op: Viewer) -> Response:
        job = await job_or_404(job_id, op)
        events = await service.events(job_id, tenant_id=op.tenant_id)
        evidence = await asyncio.to_thread(store.jobs.evidence, job_id, tenant_id=op.tenant_id)
        escalations = await service.escalations(job_id=job_id, tenant_id=op.tenant_id)
        items = await service.items(job_id, tenant_id=op.tenant_id)
        names = await asyncio.to_thread(store.escalations.tenant_names, {job.tenant_id})
        dead = await asyncio.to_thread(
            store.deliveries.search, DeliveryFilter(tenant_id=op.tenant_id, job_id=job_id),
            status="dead", limit=DEAD_SHOWN,
        )  # fmt: skip
        used = (job.notes or {}).get(CREDENTIALS_NOTE)
        browser = job.status not in ENDED and await asyncio.to_thread(browser_possible, store, job)
        counts: dict[str, int] = {}
        for item in items:
            counts[item.status] = counts.get(item.status, 0) + 1
        return page(
            request, "job.html", op, nav="jobs", job=job, events=events, evidence=evidence,
            escalations=escalations, items=items, item_counts=counts,
            tenant_name=names.get(job.tenant_id, job.tenant_id), dead_letters=len(dead),
            credentials=[str(n) for n in used] if isinstance(used, list) else [],
            browser=browser, input=mask(service.public_input(job)), output=mask(job.output),
            mask=mask,
            live_template="_job_live.html",
        )  # fmt: skip

    @router.post("/jobs/{job_id}/{action}")
    async def job_action(
        request: Request, job_id: str, action: str, op: Acting,
        reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        await job_or_404(job_id, op)
        actor, tenant = op.actor, op.tenant_id
        if action == "pause":
            await service.pause(job_id, reason=reason, actor=actor, tenant_id=tenant)
        elif action == "resume":
            await service.resume(job_id, reason=reason, actor=actor, tenant_id=tenant)
        elif action == "cancel":
            reason = reason or f"cancelled by {actor}"
            await service.cancel(job_id, reason=reason, actor=actor, tenant_id=tenant)
        elif action == "retry-items":
            await service.retry_items(job_id, actor=actor, tenant_id=tenant)
        else:
            raise HTTPException(404, f"no job action {action}")
        return RedirectResponse(f"{PREFIX}/jobs/{job_id}", status_code=303)

    @router.get("/jobs/{job_id}/report.{fmt}")
    async def report(job_id: str, fmt: str, op: Viewer) -> Response:
        await job_or_404(job_id, op)
        built = await asyncio.to_thread(build_report, store, job_id, tenant_id=op.tenant_id)
        renderers = {"csv": (to_csv, "text/csv"), "json": (to_json, "application/json"),
                     "html": (to_html, "text/html")}  # fmt: skip
        if fmt not in renderers:
            raise HTTPException(404, "report formats: csv, json, html")
        render, media = renderers[fmt]
        headers = {} if fmt == "html" else {
            "content-disposition": f'attachment; filename="{job_id}-report.{fmt}"'
        }  # fmt: skip
        return Response(render(built), media_type=media, headers=headers)

    @router.get("/evidence/{evidence_id}")
    async def evidence_blob(evidence_id: str, op: Viewer, download: bool = False) -> Response:
        item = await asyncio.to_thread(
            store.console.evidence_item, evidence_id, tenant_id=op.tenant_id
        )
        if item is None:
            raise HTTPException(404, f"no evidence {evidence_id}")
        data = await asyncio.to_thread(service.rt.blobs.get, item.blob_key)
        headers = {
            # Portal HTML is untrusted: no scripts, no same-origin access, ever.
            "content-security-policy": UNTRUSTED_CSP,
            "x-content-type-options": "nosniff",
        }
        if download:
            headers["content-disposition"] = f'attachment; filename="{item.id}-{item.kind}"'
        return Response(data, media_type=item.content_type, headers=headers)

    @router.get("/audit")
    async def audit(
        request: Request, op: Viewer, actor: str = "", action: str = "", target: str = "",
        cursor: int | None = None,
    ) -> Response:  # fmt: skip
        found = await asyncio.to_thread(
            store.console.audit_page, tenant_id=op.tenant_id, actor=actor, action=action,
            target=target, cursor=cursor, limit=PAGE,
        )  # fmt: skip
        filters = {"actor": actor, "action": action, "target": target}
        return page(request, "audit.html", op, nav="audit", rows=found.rows, mask=mask,
                    total=found.total, filters=filters,
                    next_query=next_query(filters, found.next_cursor),
                    live_template="_audit_live.html")  # fmt: skip

    return router
