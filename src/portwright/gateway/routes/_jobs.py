"""`/v1/jobs`: submit, list, read, give input and steer jobs, always within the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from portwright.client.models import (
    ControlRequest,
    ErrorBody,
    EventList,
    InputRequest,
    Job,
    JobList,
    JobSubmit,
    ScrapeRequest,
)
from portwright.gateway._context import SECURED, GatewayContext, IdempotencyKeyDoc, actor_of
from portwright.gateway._errors import ERROR_RESPONSES, ApiError, field_problems
from portwright.gateway._principal import Principal, current_principal
from portwright.gateway.idempotency import idempotent_id
from portwright.gateway.routes._scrape import submit_scrape
from portwright.gateway.routes._views import event_view, job_view, linked_job_view
from portwright.orchestrator import ConflictError

__all__ = ["jobs_router"]

JobId = Annotated[str, Path(min_length=1, max_length=64, description="a job id")]
Caller = Annotated[Principal, Depends(current_principal)]


def _doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        402: "quota or plan limit exceeded",
        404: "no such job in your tenant, or unknown adapter (`known` lists them)",
        409: "the job's state does not allow this, or the idempotency key is in flight",
    }
    return {
        **ERROR_RESPONSES,
        **{c: {"model": ErrorBody, "description": described[c]} for c in codes},
    }


def _created(job: Job) -> JSONResponse:
    return JSONResponse(
        job.model_dump(mode="json"), status_code=202, headers={"location": f"/v1/jobs/{job.id}"}
    )


def jobs_router(ctx: GatewayContext) -> APIRouter:
    router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=SECURED)
    service = ctx.service
    registry = service.rt.registry  # masks the secret input fields of each adapter

    @router.post(
        "",
        status_code=202,
        response_model=Job,
        responses=_doc(402, 404, 409),
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Submit a job",
    )
    async def submit(body: JobSubmit, caller: Caller, request: Request) -> JSONResponse:
        """Validate the input against the adapter's model and accept the job (202)."""
        job_id = idempotent_id(request, "job")  # a retry of the same claim: the same job
        if body.adapter == "scrape":
            try:
                scrape = ScrapeRequest.model_validate(body.input)
            except ValidationError as exc:
                problems = field_problems(exc.errors(), prefix="input")
                message = "; ".join(f"{p.field}: {p.problem}" for p in problems[:5])
                raise ApiError(422, "invalid_input", message, fields=problems) from None
            job = await submit_scrape(ctx, caller, scrape, priority=body.priority, job_id=job_id)
        else:
            job = await ctx.submit_metered(
                caller,
                adapter=body.adapter,
                job_input=body.input,
                priority=body.priority,
                lock_key=body.lock_key,
                job_id=job_id,
            )
        return _created(job_view(job, registry))

    @router.get("", response_model=JobList, responses=ERROR_RESPONSES, summary="List jobs")
    async def list_jobs(
        caller: Caller,
        status: Annotated[str | None, Query(max_length=16)] = None,
        portal: Annotated[str | None, Query(max_length=100)] = None,
        adapter: Annotated[str | None, Query(max_length=100)] = None,
        state: Annotated[str | None, Query(max_length=64)] = None,
        cursor: Annotated[str | None, Query(max_length=64, description="next_cursor")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> JobList:
        """Newest first; pass `next_cursor` back as `cursor` for the next page."""
        rows = await service.list_jobs(
            tenant_id=caller.tenant_id,
            status=status,
            portal=portal,
            adapter=adapter,
            state=state,
            before_id=cursor,
            limit=limit,
        )
        next_cursor = rows[-1].id if len(rows) == limit else None
        return JobList(data=[job_view(r, registry) for r in rows], next_cursor=next_cursor)

    @router.get("/{job_id}", response_model=Job, responses=_doc(404), summary="Read a job")
    async def get_job(job_id: JobId, caller: Caller) -> Job:
        return await linked_job_view(service, await service.get(job_id, tenant_id=caller.tenant_id))

    @router.get(
        "/{job_id}/events", response_model=EventList, responses=_doc(404), summary="Job events"
    )
    async def events(job_id: JobId, caller: Caller) -> EventList:
        """The job's audit events in order (every transition, with actor and reason)."""
        rows = await service.events(job_id, tenant_id=caller.tenant_id)
        return EventList(data=[event_view(r) for r in rows])

    @router.post(
        "/{job_id}/input",
        status_code=202,
        response_model=Job,
        responses=_doc(404, 409),
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Give a job input (e.g. a one-time code)",
    )
    async def give_input(job_id: JobId, body: InputRequest, caller: Caller) -> JSONResponse:
        """Delivered durably to the job, which uses it when it waits for that input."""
        job = await service.provide_input(
            job_id,
            body.name,
            body.value,
            actor=actor_of(caller),
            tenant_id=caller.tenant_id,
        )
        return JSONResponse(job_view(job, registry).model_dump(mode="json"), status_code=202)

    def control(action: str) -> Any:
        async def steer(job_id: JobId, caller: Caller, body: ControlRequest | None = None) -> Job:
            method = getattr(service, action)
            reason = body.reason if body is not None else ""
            job = await method(
                job_id, actor=actor_of(caller), reason=reason, tenant_id=caller.tenant_id
            )
            return job_view(job, registry)

        steer.__name__ = f"{action}_job"
        steer.__doc__ = f"{action.capitalize()} the job (audited with your key as the actor)."
        return steer

    for action in ("cancel", "pause", "resume"):
        router.add_api_route(
            f"/{{job_id}}/{action}",
            control(action),
            methods=["POST"],
            response_model=Job,
            responses=_doc(404, 409),
            dependencies=[Depends(IdempotencyKeyDoc)],
            summary=f"{action.capitalize()} a job",
        )

    @router.post(
        "/{job_id}/retry",
        response_model=Job,
        responses={
            **_doc(402, 404, 409),
            202: {"model": Job, "description": "a new job with the same input (retry_of set)"},
        },
        dependencies=[Depends(IdempotencyKeyDoc)],
        summary="Retry a job",
    )
    async def retry(
        job_id: JobId, caller: Caller, body: ControlRequest | None = None
    ) -> JSONResponse:
        """A job waiting on an operator retries its step (200); a failed or cancelled job
        is submitted again as a new job with the same input (202, `retry_of` set)."""
        job = await service.get(job_id, tenant_id=caller.tenant_id)
        open_ = [  # an alert parks nothing: only an escalation the job waits on is retried
            e
            for e in await service.escalations(
                job_id=job_id, status="unresolved", tenant_id=caller.tenant_id
            )
            if e.step != "alert"
        ]
        reason = body.reason if body is not None else ""
        if open_:
            await service.decide(
                open_[-1].id,
                "retry",
                actor=actor_of(caller),
                reason=reason or "retry via API",
                tenant_id=caller.tenant_id,
            )
            fresh = await service.get(job_id, tenant_id=caller.tenant_id)
            return JSONResponse(job_view(fresh, registry).model_dump(mode="json"))
        if job.status not in ("failed", "cancelled"):
            raise ConflictError(
                f"job {job_id} is {job.status}: only failed or cancelled jobs, or jobs "
                "waiting on an operator, can be retried"
            )
        again = await ctx.submit_metered(
            caller,
            adapter=job.adapter,
            job_input=job.input,
            priority=job.priority,
            lock_key=job.lock_key,
        )
        return _created(job_view(again, registry, retry_of=job.id))

    return router
