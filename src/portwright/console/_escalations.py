"""The escalation queue and an escalation's page; the operator's actions, each audited."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import ForbiddenError, Operator, need
from portwright.console._render import PREFIX, page
from portwright.console._views import mask, portal_status
from portwright.engines.browser import LIVE_NOTE, LiveTarget
from portwright.orchestrator import (
    DecisionConflictError,
    JobService,
    NotApplicableError,
    SelectionTooLargeError,
    actions_for,
    can_patch,
    option_values,
)
from portwright.orchestrator import claim_escalation as claim
from portwright.orchestrator import decide_escalation as decide
from portwright.orchestrator import decide_escalations as decide_many
from portwright.store import EscalationRecord

__all__ = ["escalations_router"]

Viewer = Annotated[Operator, Depends(need("viewer"))]
Acting = Annotated[Operator, Depends(need("operator"))]
DECISIONS = {"resolve": "resume", "retry": "retry", "cancel": "cancel", "fail": "fail",
             "acknowledge": "acknowledge"}  # fmt: skip
BROWSER_EVIDENCE = frozenset({"screenshot", "dom", "trace", "step-log"})
ENDED = ("succeeded", "failed", "cancelled")
PAGE = 50


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

    def has_browser(job_id: str) -> bool:
        """A live page now, or browser evidence (screenshots, DOM, trace) from earlier."""
        if LiveTarget.from_note(store.jobs.recall(job_id, LIVE_NOTE)) is not None:
            return True
        return any(e.kind in BROWSER_EVIDENCE for e in store.jobs.evidence(job_id))

    @router.get("/escalations")
    async def queue(
        request: Request, op: Viewer, show: str = "open", kind: str = "", portal: str = "",
        tenant: str = "", cursor: str = "", decided: int | None = None,
        skipped: int | None = None,
    ) -> Response:  # fmt: skip
        done = None if decided is None else (decided, skipped or 0)
        return await queue_page(request, op, show=show, kind=kind, portal=portal,
                                tenant=tenant, cursor=cursor, bulk_done=done)  # fmt: skip

    async def queue_page(
        request: Request, op: Operator, *, show: str, kind: str, portal: str, tenant: str = "",
        cursor: str = "", bulk_done: tuple[int, int] | None = None, problem: str = "",
        status_code: int = 200,
    ) -> Response:  # fmt: skip
        tenant = tenant.strip() if op.platform_wide else ""  # a tenant's operator sees theirs
        all_names = await asyncio.to_thread(store.console.tenant_names) if op.platform_wide else {}
        found = await asyncio.to_thread(
            store.escalations.find, tenant_id=op.tenant_id or tenant or None,
            state="unresolved" if show == "open" else None, kind=kind or None,
            portal=portal or None, cursor=cursor or None, limit=PAGE,
            newest_first=show != "open",
        )  # fmt: skip
        names = await asyncio.to_thread(
            store.escalations.tenant_names, {e.tenant_id for e in found.rows}
        )
        return page(request, "escalations.html", op, nav="escalations", rows=found.rows,
                    total=found.total, next_cursor=found.next_cursor, show=show,
                    filters={"kind": kind, "portal": portal, "tenant": tenant},
                    tenant_names=names | all_names,
                    bulk_done=bulk_done, problem=problem, status_code=status_code,
                    live_template="_escalations_live.html")  # fmt: skip

    @router.post("/escalations/bulk")
    async def bulk(
        request: Request, op: Acting, action: Annotated[str, Form()] = "",
        kind: Annotated[str, Form()] = "", portal: Annotated[str, Form()] = "",
        tenant: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        """retry, fail or cancel every open escalation the queue's filters select: each its
        own decision and audit row (see `decide_escalations`)."""
        kind, portal = kind.strip(), portal.strip()
        tenant = tenant.strip() if op.platform_wide else ""
        problem = ""
        if not (kind or portal):
            problem = "filter the queue by kind or portal first: a bulk action needs a filter"
        else:
            try:
                outcome = await decide_many(
                    service, action, actor=op.actor, reason=reason,
                    tenant_id=op.tenant_id or tenant or None,
                    kind=kind or None, portal=portal or None,
                )  # fmt: skip
            except (SelectionTooLargeError, NotApplicableError) as exc:
                problem = str(exc)
        if problem:
            return await queue_page(request, op, show="open", kind=kind, portal=portal,
                                    tenant=tenant, problem=problem, status_code=422)  # fmt: skip
        counts = {"decided": len(outcome.decided), "skipped": len(outcome.skipped)}
        query = urlencode({"show": "open", "kind": kind, "portal": portal, "tenant": tenant,
                           **counts})  # fmt: skip
        return RedirectResponse(f"{PREFIX}/escalations?{query}", status_code=303)

    async def render(
        request: Request, esc: EscalationRecord, op: Operator, *, status_code: int = 200,
        problem: str = "",
    ) -> Response:  # fmt: skip
        if esc.job_id is None:  # a portal-level escalation: its probe found it, no job did
            return await render_portal_level(request, esc, op, status_code, problem)
        job = await service.get(esc.job_id, tenant_id=op.tenant_id)
        events = await service.events(esc.job_id, tenant_id=op.tenant_id)
        evidence = await asyncio.to_thread(store.jobs.evidence, esc.job_id, tenant_id=op.tenant_id)
        wanted = {str(v) for v in (esc.details.get("evidence") or [])} | {
            str(v) for k, v in esc.details.items() if k.endswith("evidence_id")
        }
        shown = [e for e in evidence if not wanted or e.id in wanted] or evidence
        portal = await asyncio.to_thread(store.portals.get, esc.portal)
        breaker = await asyncio.to_thread(store.portals.portal_breaker, esc.portal)
        portal_state = portal_status(
            portal, breaker.state, time.time(), request.app.state.display_tz
        )
        selectors = service.rt.selectors_for(service.rt.registry.get(job.adapter)).selectors
        browser = await asyncio.to_thread(has_browser, job.id)
        names = await asyncio.to_thread(store.escalations.tenant_names, {esc.tenant_id})
        return page(
            request, "escalation.html", op, nav="escalations", esc=esc, job=job, events=events,
            evidence=shown, portal=portal, selectors=selectors, details=mask(esc.details),
            mask=mask, actions=actions_for(esc), patchable=can_patch(esc),
            options=option_values(esc), browser=browser and job.status not in ENDED,
            problem=problem, portal_state=portal_state,
            tenant_name=names.get(esc.tenant_id, esc.tenant_id),
            status_code=status_code, live_template="_escalation_live.html",
        )  # fmt: skip

    async def render_portal_level(
        request: Request, esc: EscalationRecord, op: Operator, status_code: int, problem: str
    ) -> Response:
        portal = await asyncio.to_thread(store.portals.get, esc.portal)
        breaker = await asyncio.to_thread(store.portals.breaker, esc.portal)
        portal_state = portal_status(
            portal, breaker.state, time.time(), request.app.state.display_tz
        )
        return page(
            request, "escalation.html", op, nav="escalations", esc=esc, job=None, events=[],
            evidence=[], portal=portal, selectors={}, details=mask(esc.details), mask=mask,
            actions=actions_for(esc), patchable=False, options=[], browser=False,
            problem=problem, portal_state=portal_state, tenant_name="",
            status_code=status_code, live_template="_escalation_live.html",
        )  # fmt: skip

    @router.get("/escalations/{escalation_id}")
    async def detail(request: Request, escalation_id: str, op: Viewer) -> Response:
        return await render(request, await escalation_or_404(escalation_id, op), op)

    async def refused(
        request: Request, escalation_id: str, op: Operator, exc: Exception
    ) -> Response:
        """The escalation page again, saying why the action was not taken (409 or 422)."""
        code = 422 if isinstance(exc, NotApplicableError) else 409
        esc = await escalation_or_404(escalation_id, op)
        return await render(request, esc, op, status_code=code, problem=str(exc))

    @router.post("/escalations/{escalation_id}/claim")
    async def claim_it(
        request: Request, escalation_id: str, op: Acting,
        take_over: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        esc = await escalation_or_404(escalation_id, op)
        try:
            await claim(service, esc.id, actor=op.actor, tenant_id=op.tenant_id,
                        take_over=bool(take_over))  # fmt: skip
        except DecisionConflictError as exc:
            return await refused(request, esc.id, op, exc)
        return RedirectResponse(f"{PREFIX}/escalations/{esc.id}", status_code=303)

    @router.post("/escalations/{escalation_id}/patch")
    async def patch(
        request: Request, escalation_id: str, op: Acting,
        selector_key: Annotated[str, Form()] = "", selector: Annotated[str, Form()] = "",
        reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        esc = await escalation_or_404(escalation_id, op)
        if not op.platform_wide:
            raise ForbiddenError(
                "selector maps are shared by every tenant: ask a platform operator"
            )
        try:
            await decide(
                service, esc.id, "retry", actor=op.actor,
                reason=reason or f"selector fix for {esc.id}", selectors={selector_key: selector},
            )  # fmt: skip
        except (DecisionConflictError, NotApplicableError) as exc:
            return await refused(request, esc.id, op, exc)
        return RedirectResponse(f"{PREFIX}/escalations/{esc.id}", status_code=303)

    @router.post("/escalations/{escalation_id}/{action}")
    async def decide_it(
        request: Request, escalation_id: str, action: str, op: Acting,
        value: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        if action not in DECISIONS:
            raise HTTPException(404, f"no escalation action {action}")
        esc = await escalation_or_404(escalation_id, op)
        decision = DECISIONS[action]
        try:
            await decide(
                service, esc.id, decision, actor=op.actor, tenant_id=op.tenant_id,
                value=value if decision == "resume" else None, reason=reason,
            )  # fmt: skip
        except (DecisionConflictError, NotApplicableError) as exc:
            return await refused(request, esc.id, op, exc)
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
