"""The signed-in portal: jobs (live), the answer prompt, API keys, credentials, members and
notification preferences. Everything is scoped to the customer's tenant: another tenant's
job is a 404, as on the API. Members see jobs and answer prompts; owners also manage keys,
credentials and members."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from portwright.customers._accounts import AccountError, Accounts
from portwright.customers._auth import Customer, need
from portwright.customers._render import PREFIX, page
from portwright.notifications import EVENTS, REQUIRED_EVENTS, STAFF_EVENTS, chosen
from portwright.orchestrator import ConflictError, JobService
from portwright.store import EventRecord, JobNotFoundError, JobRecord
from portwright.webauth import change_stream

if TYPE_CHECKING:
    from portwright.resources.vault import Vault

__all__ = ["pages_router"]

Member = Annotated[Customer, Depends(need("member"))]
Owner = Annotated[Customer, Depends(need("owner"))]
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$"
CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}")


def _check_chat_id(chat_id: str) -> None:
    if chat_id and not CHAT_ID.fullmatch(chat_id):
        raise AccountError("chat_id", "a numeric chat id (e.g. 123456789) or @channel")


def asked_question(job: JobRecord, events: list[EventRecord]) -> EventRecord | None:
    """The event that asked the customer for the input this job waits for, if any."""
    if job.status != "waiting" or not job.waiting_for:
        return None
    for event in reversed(events):
        if event.meta.get("input") == job.waiting_for:
            return event if event.meta.get("ask") == "customer" else None
    return None


def pages_router(service: JobService, accounts: Accounts, vault: Vault) -> APIRouter:  # noqa: PLR0915 - one closure per page
    router = APIRouter()
    store = service.store

    async def tenant_job(me: Customer, job_id: str) -> JobRecord:
        try:
            return await service.get(job_id, tenant_id=me.tenant_id)
        except JobNotFoundError as exc:
            raise HTTPException(404, f"job_id: no job {job_id!r} in your organisation") from exc

    @router.get("/")
    async def dashboard(request: Request, me: Member) -> Response:
        rows = await asyncio.to_thread(
            store.console.find_jobs, tenant_id=me.tenant_id, top_level=True, limit=100
        )
        waiting = []
        for job in [r for r in rows if r.status == "waiting"][:10]:
            events = await service.events(job.id, tenant_id=me.tenant_id)
            asked = asked_question(job, events)
            if asked is not None:  # waits for the customer (not for a webhook, say)
                waiting.append((job, asked.meta.get("question") or asked.reason))
            elif job.waiting_for == "intake":  # an order waiting for the intake form
                waiting.append((job, "Waiting for intake: fill in your intake form"))
        return page(
            request,
            "jobs.html",
            me,
            nav="jobs",
            rows=rows,
            waiting=waiting,
            live_template="_jobs_live.html",
        )

    @router.get("/jobs/{job_id}")
    async def job_page(request: Request, me: Member, job_id: str) -> Response:
        job = await tenant_job(me, job_id)
        events = await service.events(job_id, tenant_id=me.tenant_id)
        asked = asked_question(job, events)
        return page(
            request,
            "job.html",
            me,
            nav="jobs",
            job=job,
            events=events,
            asked=asked,
            public_input=service.public_input(job),
            error=request.query_params.get("error", ""),
            live_template="_job_live.html",
        )

    @router.post("/jobs/{job_id}/answer")
    async def answer(
        request: Request,
        me: Member,
        job_id: str,
        name: Annotated[str, Form(max_length=100)],
        value: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        job = await tenant_job(me, job_id)
        events = await service.events(job_id, tenant_id=me.tenant_id)
        asked = asked_question(job, events)
        if asked is None or job.waiting_for != name:
            raise HTTPException(409, f"name: job {job_id} is not waiting for your {name!r}")
        if not value.strip():
            return RedirectResponse(f"{PREFIX}/jobs/{job_id}?error=value+is+empty", 303)
        try:
            await service.provide_input(
                job_id, name, value.strip(), actor=me.actor, tenant_id=me.tenant_id
            )
        except ConflictError as exc:
            raise HTTPException(409, str(exc)) from exc
        return RedirectResponse(f"{PREFIX}/jobs/{job_id}?answered={name}", status_code=303)

    @router.get("/live")
    async def live(request: Request, me: Member) -> StreamingResponse:
        return change_stream(request, lambda: store.console.fingerprint(tenant_id=me.tenant_id))

    # -- API keys (owners) ----------------------------------------------------------------

    @router.get("/keys")
    async def keys(request: Request, me: Owner) -> Response:
        rows = await asyncio.to_thread(store.accounts.keys, me.tenant_id)
        return page(request, "keys.html", me, nav="keys", rows=rows, created=None)

    @router.post("/keys")
    async def create_key(
        request: Request, me: Owner, name: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        from portwright.gateway import issue_key  # the gateway mounts the portal

        issued = await asyncio.to_thread(issue_key, store, tenant=me.tenant_name, name=name.strip())
        await asyncio.to_thread(
            store.audit.record,
            actor=me.actor,
            action="portal.key_created",
            target_type="api_key",
            target_id=issued.record.id,
            before=None,
            after={"prefix": issued.record.prefix},
            tenant_id=me.tenant_id,
        )
        rows = await asyncio.to_thread(store.accounts.keys, me.tenant_id)
        return page(request, "keys.html", me, nav="keys", rows=rows, created=issued.key)

    @router.post("/keys/{prefix}/revoke")
    async def revoke_key(request: Request, me: Owner, prefix: str) -> Response:
        rows = await asyncio.to_thread(store.accounts.keys, me.tenant_id)
        if not any(r.prefix == prefix for r in rows):
            raise HTTPException(404, f"prefix: no key {prefix!r} in your organisation")
        await asyncio.to_thread(store.accounts.revoke, prefix)
        await asyncio.to_thread(
            store.audit.record,
            actor=me.actor,
            action="portal.key_revoked",
            target_type="api_key",
            target_id=prefix,
            before=None,
            after={"revoked": True},
            tenant_id=me.tenant_id,
        )
        return RedirectResponse(f"{PREFIX}/keys", status_code=303)

    # -- credentials (owners; write-only) -------------------------------------------------

    @router.get("/credentials")
    async def credentials(request: Request, me: Owner) -> Response:
        rows = await asyncio.to_thread(vault.list, me.tenant_id)
        return page(
            request,
            "credentials.html",
            me,
            nav="credentials",
            rows=rows,
            error="",
            saved=request.query_params.get("saved", ""),
        )

    @router.post("/credentials")
    async def save_credential(
        request: Request,
        me: Owner,
        name: Annotated[str, Form(max_length=100)] = "",
        value: Annotated[str, Form(max_length=10_000)] = "",
    ) -> Response:
        error = ""
        if not re.match(NAME_PATTERN, name):
            error = "name: use letters, digits, dots, dashes and underscores (1-100)"
        elif not value:
            error = "value: must not be empty"
        if error:
            rows = await asyncio.to_thread(vault.list, me.tenant_id)
            return page(
                request,
                "credentials.html",
                me,
                nav="credentials",
                rows=rows,
                error=error,
                saved="",
                status_code=422,
            )
        record = await asyncio.to_thread(vault.put, me.tenant_id, name, value)
        await asyncio.to_thread(
            store.audit.record,
            actor=me.actor,
            action="portal.credential_saved",
            target_type="credential",
            target_id=name,
            before=None,
            after={"revision": record.revision},
            tenant_id=me.tenant_id,
        )
        return RedirectResponse(f"{PREFIX}/credentials?saved={name}", status_code=303)

    @router.post("/credentials/{name}/delete")
    async def delete_credential(request: Request, me: Owner, name: str) -> Response:
        if not await asyncio.to_thread(vault.delete, me.tenant_id, name):
            raise HTTPException(404, f"name: no credential {name!r} in your organisation")
        await asyncio.to_thread(
            store.audit.record,
            actor=me.actor,
            action="portal.credential_deleted",
            target_type="credential",
            target_id=name,
            before=None,
            after=None,
            tenant_id=me.tenant_id,
        )
        return RedirectResponse(f"{PREFIX}/credentials", status_code=303)

    # -- members (owners) ----------------------------------------------------------------

    @router.get("/members")
    async def members(request: Request, me: Owner) -> Response:
        rows = await asyncio.to_thread(store.customers.users, me.tenant_id)
        return page(request, "members.html", me, nav="members", rows=rows, error="", invited="")

    @router.post("/members")
    async def invite(
        request: Request,
        me: Owner,
        email: Annotated[str, Form(max_length=320)] = "",
        role: Annotated[str, Form(max_length=16)] = "member",
    ) -> Response:
        try:
            user = await asyncio.to_thread(accounts.invite, me.user, email=email, role=role)
        except AccountError as exc:
            rows = await asyncio.to_thread(store.customers.users, me.tenant_id)
            return page(
                request,
                "members.html",
                me,
                nav="members",
                rows=rows,
                error=str(exc),
                invited="",
                status_code=422,
            )
        request.app.state.poke()
        rows = await asyncio.to_thread(store.customers.users, me.tenant_id)
        return page(
            request, "members.html", me, nav="members", rows=rows, error="", invited=user.email
        )

    # -- notification preferences (each user their own) -----------------------------------

    def _choices(prefs: dict[tuple[str, str], bool]) -> list[dict[str, object]]:
        channels = sorted(set(accounts.notifier.channels) - {"chat"}) or ["email"]
        return [
            {
                "event": event,
                "title": spec.title,
                "channels": [(c, chosen(event, c, prefs)) for c in channels],
            }
            for event, spec in EVENTS.items()
            if event not in REQUIRED_EVENTS | STAFF_EVENTS
        ]

    @router.get("/preferences")
    async def preferences(request: Request, me: Member) -> Response:
        prefs = await asyncio.to_thread(store.customers.preferences, me.id)
        return page(
            request,
            "preferences.html",
            me,
            nav="preferences",
            rows=_choices(prefs),
            error="",
            saved=bool(request.query_params.get("saved")),
        )

    @router.post("/preferences")
    async def save_preferences(request: Request, me: Member) -> Response:
        form = await request.form()
        phone = str(form.get("phone", ""))[:40]
        channels = sorted(set(accounts.notifier.channels) - {"chat"}) or ["email"]
        choices = {
            (event, channel): form.get(f"{event}:{channel}") == "on"
            for event in EVENTS
            if event not in REQUIRED_EVENTS | STAFF_EVENTS
            for channel in channels
        }
        chat_id = str(form.get("chat_id", ""))[:64].strip()
        try:
            _check_chat_id(chat_id)
            await asyncio.to_thread(accounts.set_phone, me.user, phone)
            await asyncio.to_thread(store.customers.update_user, me.id, chat_id=chat_id or None)
        except AccountError as exc:
            prefs = await asyncio.to_thread(store.customers.preferences, me.id)
            return page(
                request,
                "preferences.html",
                me,
                nav="preferences",
                rows=_choices(prefs),
                error=str(exc),
                saved=False,
                status_code=422,
            )
        await asyncio.to_thread(store.customers.set_preferences, me.user, choices)
        return RedirectResponse(f"{PREFIX}/preferences?saved=1", status_code=303)

    return router
