"""The escalation queue and an escalation's page; the operator's actions, each audited."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import ForbiddenError, Operator, need
from portwright.console._render import PREFIX, page
from portwright.console._views import mask
from portwright.orchestrator import ConflictError, JobService
from portwright.store import EscalationRecord

__all__ = ["escalations_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
Acting = Annotated[Operator, Depends(need("operator"))]
DECISIONS = {"resolve": "resume", "retry": "retry", "cancel": "cancel", "fail": "fail"}


def escalations_router(service: JobService) -> APIRouter:  # noqa: PLR0915 (one route each)
    router = APIRouter()
    store = service.store

    async def escalation_or_404(escalation_id: str, op: Operator) -> EscalationRecord:
        try:
            return await asyncio.to_thread(
                store.jobs.escalation, escalation_id, tenant_id=op.tenant_id
            )
        except LookupError as exc:
            raise HTTPException(404, f"no escalation {escalation_id}") from exc

    def audit(op: Operator, esc: EscalationRecord, action: str, after: dict[str, Any]) -> None:
        store.audit.record(
            actor=op.actor, action=f"escalation.{action}", target_type="escalation",
            target_id=esc.id, before={"status": esc.status, "claimed_by": esc.claimed_by,
                                      "job_id": esc.job_id},
            after=after, reason=str(after.get("reason", "")), tenant_id=esc.tenant_id,
        )  # fmt: skip

    @router.get("/escalations")
    async def queue(request: Request, op: Viewer, show: str = "open") -> Response:
        rows = await service.escalations(
            status="unresolved" if show == "open" else None, tenant_id=op.tenant_id, limit=500
        )
        rows = sorted(rows, key=lambda e: e.created_at, reverse=show != "open")
        return page(request, "escalations.html", op, nav="escalations", rows=rows, show=show,
                    live_template="_escalations_live.html")  # fmt: skip

    @router.get("/escalations/{escalation_id}")
    async def detail(request: Request, escalation_id: str, op: Viewer) -> Response:
        esc = await escalation_or_404(escalation_id, op)
        job = await service.get(esc.job_id, tenant_id=op.tenant_id)
        events = await service.events(esc.job_id, tenant_id=op.tenant_id)
        evidence = await asyncio.to_thread(store.jobs.evidence, esc.job_id, tenant_id=op.tenant_id)
        wanted = {str(v) for v in (esc.details.get("evidence") or [])} | {
            str(v) for k, v in esc.details.items() if k.endswith("evidence_id")
        }
        shown = [e for e in evidence if not wanted or e.id in wanted] or evidence
        portal = await asyncio.to_thread(store.portals.get, esc.portal)
        selectors = service.rt.selectors_for(service.rt.registry.get(job.adapter)).selectors
        return page(
            request, "escalation.html", op, nav="escalations", esc=esc, job=job, events=events,
            evidence=shown, portal=portal, selectors=selectors, details=mask(esc.details),
            mask=mask, live_template="_escalation_live.html",
        )  # fmt: skip

    @router.post("/escalations/{escalation_id}/claim")
    async def claim(escalation_id: str, op: Acting) -> Response:
        esc = await escalation_or_404(escalation_id, op)
        if not await asyncio.to_thread(store.jobs.claim_escalation, esc.id, actor=op.actor):
            raise ConflictError(f"escalation {esc.id} is {esc.status}, it cannot be claimed")
        await asyncio.to_thread(audit, op, esc, "claim", {"status": "claimed", "by": op.actor})
        return RedirectResponse(f"{PREFIX}/escalations/{esc.id}", status_code=303)

    @router.post("/escalations/{escalation_id}/patch")
    async def patch(
        escalation_id: str, op: Acting,
        selector_key: Annotated[str, Form()], selector: Annotated[str, Form()],
        reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        esc = await escalation_or_404(escalation_id, op)
        if not op.platform_wide:
            raise ForbiddenError(
                "selector maps are shared by every tenant: ask a platform operator"
            )
        if not selector.strip():
            raise HTTPException(422, "the new selector is empty")
        reason = reason or f"selector fix for {esc.id}"
        await service.decide(
            esc.id, "retry", actor=op.actor, reason=reason,
            selectors={selector_key: selector.strip()},
        )  # fmt: skip
        after = {"decision": "retry", "selectors": {selector_key: selector.strip()},
                 "reason": reason}  # fmt: skip
        await asyncio.to_thread(audit, op, esc, "patch", after)
        return RedirectResponse(f"{PREFIX}/escalations/{esc.id}", status_code=303)

    @router.post("/escalations/{escalation_id}/{action}")
    async def decide(
        escalation_id: str, action: str, op: Acting,
        value: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        if action not in DECISIONS:
            raise HTTPException(404, f"no escalation action {action}")
        esc = await escalation_or_404(escalation_id, op)
        decision = DECISIONS[action]
        await service.decide(
            esc.id, decision, actor=op.actor, tenant_id=op.tenant_id,  # type: ignore[arg-type]
            value=value if action == "resolve" else None, reason=reason,
        )  # fmt: skip
        after = mask({"decision": decision, "value": value or None, "reason": reason})
        await asyncio.to_thread(audit, op, esc, action, after)
        return RedirectResponse(f"{PREFIX}/escalations/{esc.id}", status_code=303)

    @router.post("/portals/{portal}/{action}")
    async def portal_action(
        request: Request, portal: str, action: str, op: Acting,
        reason: Annotated[str, Form()] = "", back: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        if not op.platform_wide:
            raise ForbiddenError("portals are shared by every tenant: ask a platform operator")
        try:
            await asyncio.to_thread(store.portals.get, portal)
        except LookupError as exc:
            raise HTTPException(404, f"no portal {portal}") from exc
        if action == "pause":
            await service.pause_portal(portal, actor=op.actor, reason=reason)
        elif action == "resume":
            await service.resume_portal(portal, actor=op.actor, reason=reason)
        else:
            raise HTTPException(404, f"no portal action {action}")
        target = back if back.startswith(PREFIX + "/") and "//" not in back else PREFIX + "/"
        return RedirectResponse(target, status_code=303)

    return router
