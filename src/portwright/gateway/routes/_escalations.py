"""`/v1/escalations`: list, read, claim and decide escalations within the caller's tenant.

Reading needs any key of the tenant; claiming and deciding need the `operator` (or
`admin`) scope; a selector patch needs `admin` (selector maps are shared by every tenant).
Decisions are compare-and-set: a conflicting second decision answers 409 naming who
decided what, and writes no audit row. The same decision by the same key again is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from portwright.client.models import (
    BulkDecisionRequest,
    BulkDecisionResult,
    BulkSkipped,
    ClaimRequest,
    DecisionRequest,
    DecisionResult,
    ErrorBody,
    Escalation,
    EscalationList,
    FieldProblem,
    SelectorPatchRequest,
)
from portwright.console import mask
from portwright.gateway._context import SECURED, GatewayContext, IdempotencyKeyDoc, actor_of
from portwright.gateway._errors import ERROR_RESPONSES, ApiError
from portwright.gateway._principal import Principal, current_principal
from portwright.orchestrator import (
    DecisionConflictError,
    DecisionOutcome,
    JobService,
    NotApplicableError,
    SelectionTooLargeError,
    actions_for,
    claim_escalation,
    decide_escalation,
    decide_escalations,
    option_values,
)
from portwright.store import EscalationRecord, Store

__all__ = ["escalations_router"]

Caller = Annotated[Principal, Depends(current_principal)]
EscalationId = Annotated[str, Path(min_length=1, max_length=64, description="an escalation id")]
STATES = ("open", "claimed", "decided", "resolved", "unresolved")


def escalation_view(esc: EscalationRecord) -> Escalation:
    decided = esc.status in ("decided", "resolved")
    return Escalation(
        id=esc.id, job_id=esc.job_id, tenant_id=esc.tenant_id, portal=esc.portal,
        kind=esc.kind, status=esc.status, step=esc.step, reason=esc.reason,
        details=mask(esc.details), decision=mask(esc.decision) if esc.decision else None,
        created_at=esc.created_at, claimed_by=esc.claimed_by, claimed_at=esc.claimed_at,
        decided_by=esc.resolved_by if decided else None,
        decided_at=esc.resolved_at if decided else None,
        actions=list(actions_for(esc)), options=[list(o) for o in option_values(esc)],
        links={} if esc.job_id is None else {
            "job": f"/v1/jobs/{esc.job_id}", "events": f"/v1/jobs/{esc.job_id}/events",
            "evidence": f"/v1/jobs/{esc.job_id}/evidence",
        },
    )  # fmt: skip


def _doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        403: "the key lacks the operator scope (or admin, for a selector patch)",
        404: "no such escalation in your tenant",
        409: "decided already by someone else (the message names who and what), or claimed "
        "by another operator",
        422: "the decision does not apply to this escalation's kind, or a field is invalid "
        "(for a bulk decision: no filter, or a selection too large)",
    }
    return {
        **ERROR_RESPONSES,
        **{c: {"model": ErrorBody, "description": described[c]} for c in codes},
    }


def _need(caller: Principal, scope: str, what: str) -> None:
    allowed = {scope, "admin"}
    if not allowed & caller.scopes:
        raise ApiError(403, "forbidden", f"{what} needs a key with the {scope} scope")


def _result(outcome: DecisionOutcome) -> DecisionResult:
    return DecisionResult(
        escalation=escalation_view(outcome.escalation),
        selector_version=outcome.selector_version,
        also_retried=[e.id for e in outcome.also_retried],
        skipped=[e.id for e in outcome.skipped],
    )


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, NotApplicableError):
        problem = FieldProblem(field=exc.field, problem=str(exc))
        return ApiError(422, "not_applicable", f"{exc.field}: {exc}", fields=[problem])
    return ApiError(409, "conflict", str(exc))


async def _bulk(
    service: JobService, body: BulkDecisionRequest, caller: Principal
) -> BulkDecisionResult:
    _need(caller, "operator", "deciding escalations")
    if not (body.portal or body.kind or body.selector_key):
        problem = FieldProblem(field="portal", problem="give portal, kind or selector_key")
        raise ApiError(422, "invalid_request", "a bulk decision needs a filter: portal, "
                       "kind or selector_key", fields=[problem])  # fmt: skip
    try:
        outcome = await decide_escalations(
            service, body.action, actor=actor_of(caller), reason=body.reason,
            tenant_id=caller.tenant_id, portal=body.portal, kind=body.kind,
            selector_key=body.selector_key, state=body.state,
        )  # fmt: skip
    except SelectionTooLargeError as exc:
        problem = FieldProblem(field="selection", problem=str(exc))
        raise ApiError(422, "selection_too_large", str(exc), fields=[problem]) from None
    except NotApplicableError as exc:
        raise _refused(exc) from None
    return BulkDecisionResult(
        matched=outcome.matched,
        decided=[escalation_view(e) for e in outcome.decided],
        skipped=[BulkSkipped(id=e.id, reason=why) for e, why in outcome.skipped],
    )


async def _one(store: Store, escalation_id: str, caller: Principal) -> EscalationRecord:
    """The caller's tenant's escalation; or, for an admin key, a portal-level one (no job,
    no tenant: a probe found the portal changed)."""
    try:
        return await asyncio.to_thread(
            store.jobs.escalation, escalation_id, tenant_id=caller.tenant_id
        )
    except LookupError:
        pass
    if "admin" in caller.scopes:
        with contextlib.suppress(LookupError):
            esc = await asyncio.to_thread(store.jobs.escalation, escalation_id)
            if esc.job_id is None:
                return esc
    raise ApiError(404, "not_found", f"no escalation {escalation_id}")


def tenant_of(esc: EscalationRecord, caller: Principal) -> str | None:
    """The tenant a decision on `esc` is scoped to: none for a portal-level escalation."""
    return None if esc.job_id is None else caller.tenant_id


def escalations_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(prefix="/v1/escalations", tags=["escalations"], dependencies=SECURED)
    service = ctx.service
    store = service.store

    async def one(escalation_id: str, caller: Principal) -> EscalationRecord:
        return await _one(store, escalation_id, caller)

    @router.get("", response_model=EscalationList, responses=_doc(403, 422), summary="List")
    async def list_escalations(
        caller: Caller,
        state: Annotated[str | None, Query(max_length=16, description=", ".join(STATES))] = None,
        kind: Annotated[str | None, Query(max_length=32)] = None,
        portal: Annotated[str | None, Query(max_length=100)] = None,
        selector_key: Annotated[str | None, Query(max_length=100)] = None,
        job_id: Annotated[str | None, Query(max_length=64)] = None,
        cursor: Annotated[str | None, Query(max_length=64, description="next_cursor")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        portal_level: Annotated[
            bool, Query(description="portal-level escalations (no job) instead; admin scope")
        ] = False,
    ) -> EscalationList:
        """Newest first, with the total matching; pass `next_cursor` back as `cursor`.
        `portal_level=true` (admin scope) lists instead the escalations a portal's probe
        raised, which belong to no job and no tenant."""
        if portal_level:
            _need(caller, "admin", "reading portal-level escalations")
        if state is not None and state not in STATES:
            problem = FieldProblem(field="state", problem=f"one of {', '.join(STATES)}")
            raise ApiError(422, "invalid_request", f"state: one of {', '.join(STATES)}",
                           fields=[problem])  # fmt: skip
        found = await asyncio.to_thread(
            store.escalations.find, tenant_id=None if portal_level else caller.tenant_id,
            state=state, kind=kind, portal=portal, selector_key=selector_key, job_id=job_id,
            cursor=cursor, limit=limit, portal_level=portal_level,
        )  # fmt: skip
        return EscalationList(
            data=[escalation_view(e) for e in found.rows],
            total=found.total,
            next_cursor=found.next_cursor,
        )

    @router.post("/bulk", response_model=BulkDecisionResult, responses=_doc(403, 422),
                 dependencies=[Depends(IdempotencyKeyDoc)],
                 summary="Decide every escalation a filter selects")  # fmt: skip
    async def bulk(body: BulkDecisionRequest, caller: Caller) -> BulkDecisionResult:
        """retry, fail or cancel every undecided (open or claimed) escalation of your tenant
        that the filters select — at least one of `portal`, `kind`, `selector_key`. Each is
        its own compare-and-set decision with its own audit row; one decided meanwhile,
        claimed by another operator or of a kind the action does not apply to is listed in
        `skipped` with why. More than the cap selected: 422, nothing decided."""
        return await _bulk(service, body, caller)

    @router.get("/{escalation_id}", response_model=Escalation, responses=_doc(404),
                summary="Read an escalation")  # fmt: skip
    async def get_escalation(escalation_id: EscalationId, caller: Caller) -> Escalation:
        """The escalation with its details, decision, the actions that apply and links to
        the job's events and evidence."""
        return escalation_view(await one(escalation_id, caller))

    @router.post("/{escalation_id}/claim", response_model=Escalation,
                 responses=_doc(403, 404, 409), dependencies=[Depends(IdempotencyKeyDoc)],
                 summary="Claim an escalation")  # fmt: skip
    async def claim(
        escalation_id: EscalationId, caller: Caller, body: ClaimRequest | None = None
    ) -> Escalation:
        """Only the claimer may decide a claimed escalation; `take_over` moves another's
        claim to this key (audited)."""
        _need(caller, "operator", "claiming an escalation")
        body = body or ClaimRequest()
        esc = await one(escalation_id, caller)
        try:
            record = await claim_escalation(
                service, esc.id, actor=actor_of(caller), tenant_id=tenant_of(esc, caller),
                take_over=body.take_over, reason=body.reason,
            )  # fmt: skip
        except DecisionConflictError as exc:
            raise _refused(exc) from None
        return escalation_view(record)

    @router.post("/{escalation_id}/decide", response_model=DecisionResult,
                 responses=_doc(403, 404, 409, 422), dependencies=[Depends(IdempotencyKeyDoc)],
                 summary="Decide an escalation")  # fmt: skip
    async def decide(
        escalation_id: EscalationId, body: DecisionRequest, caller: Caller
    ) -> DecisionResult:
        """resume (with `value`), retry, fail, cancel — or acknowledge an alert. Atomic:
        a second, different decision answers 409 naming who decided what."""
        _need(caller, "operator", "deciding an escalation")
        esc = await one(escalation_id, caller)
        try:
            outcome = await decide_escalation(
                service, esc.id, body.action, actor=actor_of(caller), value=body.value,
                reason=body.reason, tenant_id=tenant_of(esc, caller),
            )  # fmt: skip
        except (DecisionConflictError, NotApplicableError) as exc:
            raise _refused(exc) from None
        return _result(outcome)

    @router.post("/{escalation_id}/patch", response_model=DecisionResult,
                 responses=_doc(403, 404, 409, 422), dependencies=[Depends(IdempotencyKeyDoc)],
                 summary="Patch selectors and retry")  # fmt: skip
    async def patch(
        escalation_id: EscalationId, body: SelectorPatchRequest, caller: Caller
    ) -> DecisionResult:
        """A page-changed escalation: the selectors become the adapter's next selector-map
        version, this job retries, and so does every other job of the portal and adapter
        version parked on the same selector (each audited). `also_retried` lists them."""
        _need(caller, "admin", "patching selectors (shared by every tenant)")
        esc = await one(escalation_id, caller)
        try:
            outcome = await decide_escalation(
                service, esc.id, "retry", actor=actor_of(caller), reason=body.reason,
                selectors=body.selectors, tenant_id=caller.tenant_id,
            )  # fmt: skip
        except (DecisionConflictError, NotApplicableError) as exc:
            raise _refused(exc) from None
        return _result(outcome)

    return router
