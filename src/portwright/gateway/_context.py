"""What the route modules share: the service, the store, the guard, the meter, the vault."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Header, Security
from fastapi.security import HTTPBearer

from portwright.client.models import FieldProblem
from portwright.gateway._errors import ApiError
from portwright.gateway._plans import Meter, plan_of
from portwright.gateway._principal import Principal
from portwright.orchestrator import JobService
from portwright.resources.ssrf import UrlGuard, UrlRefusedError
from portwright.resources.vault import Vault
from portwright.settings import Settings
from portwright.store import JobIdTakenError, JobNotFoundError, JobRecord, Store

__all__ = ["SECURED", "GatewayContext", "IdempotencyKeyDoc", "actor_of"]

bearer = HTTPBearer(auto_error=False, description="an API key: `pw_<prefix>_<secret>`")
SECURED = [Security(bearer)]


def IdempotencyKeyDoc(  # noqa: N802 - a FastAPI dependency documenting the header
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        max_length=255,
        description="replays return the first answer for 24 h; 409 while in flight; "
        "422 with a different body",
    ),
) -> None:
    """Documents `Idempotency-Key` (the idempotency middleware does the work)."""


def actor_of(principal: Principal) -> str:
    return principal.actor


@dataclass(frozen=True)
class GatewayContext:
    service: JobService
    settings: Settings
    guard: UrlGuard
    meter: Meter
    vault: Vault

    @property
    def store(self) -> Store:
        return self.service.store

    async def check_url(self, field: str, url: str) -> None:
        """422 naming `field` when the SSRF guard refuses `url`."""
        try:
            await self.guard.check(url)
        except UrlRefusedError as exc:
            raise ApiError(
                422,
                "url_refused",
                f"{field}: {exc.reason}",
                fields=[FieldProblem(field=field, problem=exc.reason)],
            ) from None

    async def submit_metered(
        self,
        principal: Principal,
        *,
        adapter: str,
        job_input: Mapping[str, Any],
        credits: int = 0,
        tier: str | None = None,
        priority: int = 0,
        lock_key: str | None = None,
        job_id: str | None = None,
    ) -> JobRecord:
        """Check the plan, reserve quota, submit, and record the usage (refund on failure).
        A `job_id` that names an existing job of the tenant (a retried request under the
        same idempotency claim) returns that job, metered once."""
        if job_id is not None:
            try:
                return await asyncio.to_thread(
                    self.service.store.jobs.get, job_id, tenant_id=principal.tenant_id
                )
            except JobNotFoundError:
                pass
        plan = plan_of(principal.plan)
        self.meter.check_job_shape(plan, job_input)
        self.service.rt.registry.get(adapter)  # unknown adapter: 404 before any quota is taken
        await self.meter.check_concurrency(principal.tenant_id, principal.key_id, plan, jobs=1)
        period = await self.meter.reserve(principal.tenant_id, plan, jobs=1, credits=credits)
        try:
            job = await self.service.submit(
                tenant_id=principal.tenant_id,
                adapter=adapter,
                input=job_input,
                job_id=job_id,
                lock_key=lock_key,
                priority=priority,
                actor=actor_of(principal),
            )
        except BaseException:
            await asyncio.shield(
                self.meter.refund(principal.tenant_id, period, jobs=1, credits=credits)
            )
            raise
        await self.meter.record(
            tenant_id=principal.tenant_id,
            period=period,
            kind=adapter,
            credits=credits,
            tier=tier,
            api_key_id=principal.key_id,
            job_id=job.id,
        )
        return job

    async def submit_metered_many(
        self,
        principal: Principal,
        *,
        adapter: str,
        inputs: Sequence[Mapping[str, Any]],
        credits: Sequence[int],
        tier: str | None = None,
        job_ids: Sequence[str] | None = None,
        same: Callable[[JobRecord], bool] | None = None,
        early: Callable[[list[JobRecord]], object] | None = None,
    ) -> list[JobRecord]:
        """A batch, set-based: check the plan, reserve the whole batch's quota once, accept
        every job with its usage record in one transaction (refunded if that fails).

        `job_ids` (one per input; a retried request under the same idempotency claim names
        the same ones) that name jobs of the tenant already, all of them and each `same`
        (this request's), return those jobs, metered once: a gateway that died between
        accepting the batch and storing its answer made them. Ids taken otherwise (by
        another request: a clash of derived ids, not expected) fall back to fresh ids.
        `early`: see `JobService.submit_many`."""
        if len(credits) != len(inputs):
            raise ValueError("submit_metered_many: one credits figure per input")
        if job_ids is not None:
            found = await self._accepted_already(principal, job_ids, same)
            if found is not None:
                return found
        plan = plan_of(principal.plan)
        for job_input in inputs:
            self.meter.check_job_shape(plan, job_input)
        self.service.rt.registry.get(adapter)  # unknown adapter: 404 before any quota is taken
        jobs, total = len(inputs), sum(credits)
        period = await self.meter.admit(
            principal.tenant_id, principal.key_id, plan, jobs=jobs, credits=total
        )

        def usage(conn: sa.Connection, records: list[JobRecord]) -> None:
            self.store.usage.record_many(
                conn,
                tenant_id=principal.tenant_id,
                period=period,
                kind=adapter,
                tier=tier,
                api_key_id=principal.key_id,
                charges=[(r.id, c) for r, c in zip(records, credits, strict=True)],
            )

        submit = functools.partial(
            self.service.submit_many,
            tenant_id=principal.tenant_id,
            adapter=adapter,
            inputs=inputs,
            actor=actor_of(principal),
            also=usage,
            early=early,
        )
        try:
            try:
                return await submit(job_ids=job_ids)
            except JobIdTakenError:
                # made meanwhile by the same claim's first attempt (still running past its
                # lease)? Then those; else fresh ids
                if job_ids is None:
                    raise
                found = await self._accepted_already(principal, job_ids, same)
                if found is not None:
                    await asyncio.shield(
                        self.meter.refund(principal.tenant_id, period, jobs=jobs, credits=total)
                    )
                    return found
                return await submit()
        except BaseException:  # nothing was accepted (the jobs and usage commit together)
            await asyncio.shield(
                self.meter.refund(principal.tenant_id, period, jobs=jobs, credits=total)
            )
            raise

    async def _accepted_already(
        self,
        principal: Principal,
        job_ids: Sequence[str],
        same: Callable[[JobRecord], bool] | None,
    ) -> list[JobRecord] | None:
        """The jobs `job_ids` name when all exist, are the tenant's and `same`; else None.
        A batch's jobs are written in one transaction: without its first, none is there."""
        jobs = self.service.store.jobs
        if not job_ids or not await asyncio.to_thread(jobs.get_many, job_ids[:1]):
            return None
        found = await asyncio.to_thread(jobs.get_many, job_ids)
        if len(found) != len(job_ids):
            return None
        if any(j.tenant_id != principal.tenant_id or (same and not same(j)) for j in found):
            return None
        return found
