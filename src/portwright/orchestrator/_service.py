"""JobService: the facade the gateway, console and CLI use. No DBOS outside this package."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
import structlog
from dbos import DBOS
from dbos._error import DBOSNonExistentWorkflowError

from portwright._ids import new_id, new_ids
from portwright.observability import current_traceparent
from portwright.orchestrator._chunks import CHUNK_NOTE, enqueue_chunks, group_chunks, plan_chunks
from portwright.orchestrator._runtime import Runtime
from portwright.orchestrator._sealed_input import public_input
from portwright.orchestrator._tx import apply_transition
from portwright.sdk import PortwrightError
from portwright.store import (
    EscalationRecord,
    EventRecord,
    JobIdTakenError,
    JobRecord,
    NewJob,
    PortalRecord,
    SelectorMapRecord,
    Store,
)

__all__ = ["ConflictError", "Decision", "JobService", "Replay", "replay_events"]

Decision = Literal["retry", "resume", "fail", "cancel", "acknowledge"]

log = structlog.get_logger("portwright.service")


class ConflictError(PortwrightError):
    """The request does not fit the job's current state (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class Replay:
    """A job's state folded back from its audit events, and whether it matches the row."""

    job_id: str
    state: str | None
    paused: bool
    seq: int
    transitions: int
    matches: bool


def replay_events(events: list[EventRecord]) -> tuple[str | None, bool, int, int]:
    """Fold events into (state, paused, last seq, transitions)."""
    state: str | None = None
    paused = False
    seq = 0
    transitions = 0
    for event in events:
        if event.seq != seq + 1:
            raise ValueError(f"event sequence gap before seq {event.seq} of job {event.job_id}")
        seq = event.seq
        if event.kind == "transition":
            if state is not None and event.from_state != state:
                raise ValueError(f"event {seq} starts from {event.from_state}, state was {state}")
            state = event.to_state
            transitions += 1
        elif event.kind == "control":
            action = event.meta.get("action")
            if action == "pause":
                paused = True
            elif action == "resume":
                paused = False
    return state, paused, seq, transitions


class JobService:
    """Submit, inspect and steer jobs. Every mutating call is audited with its actor."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._enqueueing: set[asyncio.Task[None]] = set()

    @property
    def store(self) -> Store:
        return self.rt.store

    # -- submitting and reading ----------------------------------------------------------

    async def submit(
        self,
        *,
        tenant_id: str,
        adapter: str,
        input: Mapping[str, Any],
        job_id: str | None = None,
        lock_key: str | None = None,
        priority: int = 0,
        actor: str = "api",
        parent_id: str | None = None,
        item_key: str | None = None,
    ) -> JobRecord:
        """Validate and accept a job. The same `job_id` twice returns the first job. It
        starts on the version the portal's rollout chooses, and keeps it to its end."""
        job_id = job_id or new_id("job")
        if len(self.rt.registry.versions(adapter)) == 1:  # nothing to choose, nothing to read
            adapter_cls = self.rt.registry.get(adapter)
        else:
            adapter_cls = await asyncio.to_thread(
                self.rt.rollouts.choose, adapter, tenant_id, job_id
            )
        model = adapter_cls.input_model.model_validate(dict(input))
        lock = lock_key or adapter_cls().lock_key(model)
        machine = adapter_cls.machine
        if self.rt.inputs.has_secrets(model):  # sealing reads the tenant's key: off the loop
            stored = await asyncio.to_thread(self.rt.inputs.seal, tenant_id, model)
        else:
            stored = model.model_dump(mode="json")
        record, _created = await asyncio.to_thread(
            self.store.jobs.insert,
            job_id=job_id,
            tenant_id=tenant_id,
            adapter=adapter_cls.name,
            adapter_version=adapter_cls.version,
            portal=adapter_cls.portal_name(),
            state=machine.initial,
            status=machine.status_of(machine.initial),
            input=stored,
            lock_key=lock,
            priority=priority,
            actor=actor,
            parent_id=parent_id,
            item_key=item_key,
            trace_parent=current_traceparent(),
        )
        await self.rt.enqueue(record)
        return record

    def public_input(self, job: JobRecord) -> dict[str, Any]:
        """The job's input as it may be shown: its secret fields (`SecretStr` in the adapter's
        input model) and any sealed value masked."""
        known = job.adapter in self.rt.registry
        model = self.rt.registry.get(job.adapter).input_model if known else None
        return public_input(model, job.input)

    async def submit_many(
        self,
        *,
        tenant_id: str,
        adapter: str,
        inputs: Sequence[Mapping[str, Any]],
        priority: int = 0,
        actor: str = "api",
        also: Callable[[sa.Connection, list[JobRecord]], None] | None = None,
        job_ids: Sequence[str] | None = None,
        early: Callable[[list[JobRecord]], object] | None = None,
    ) -> list[JobRecord]:
        """Validate and accept many jobs at once, set-based: every job row and its first event
        in one transaction (`JobRepository.insert_many`: on PostgreSQL one statement for
        both tables, on SQLite one multi-row INSERT per table), `also(conn, jobs)` in that same
        transaction (e.g. their usage records). `early(jobs)` is called, in the acceptance's
        thread, as soon as the records are known, mostly before they are written (insert_many's
        `on_records`): to prepare an answer meanwhile, never to show before this returns
        (called again with other records when fresh ids are drawn again; what this returns
        is what was accepted). Once that commits the jobs are accepted. A
        batchable adapter's items are enqueued as chunk workflows, one per `batch_size`
        items (`portwright.orchestrator._chunks`), each row noting its chunk, in one DBOS
        transaction right after that commit, before this returns (a few chunks: a few ms;
        the workers wait for them); the rest as one workflow per job, in one DBOS
        transaction in the background (DBOS builds its multi-row INSERT for ~1 s per 1,000
        workflows, which the caller does not wait for). A failed enqueue is logged, not
        raised (the jobs are accepted); it, or a crash before the enqueue commits, leaves
        queued jobs without a workflow, which the janitor enqueues
        (`Janitor.enqueue_orphans`), so an accepted job is never lost. Ids sort in the
        order given. The batch starts on one adapter version, the one the portal's rollout
        chooses for it. `job_ids` (one per input, in the same order) names the jobs instead
        of fresh ids (a batch under an idempotency claim: `claimed_ids`); when any of them
        exists already `JobIdTakenError` is raised and nothing is written."""
        self.rt.registry.get(adapter)  # an unknown adapter fails before anything is read
        adapter_cls = await asyncio.to_thread(
            self.rt.rollouts.choose, adapter, tenant_id, new_id("batch")
        )
        machine = adapter_cls.machine
        instance = adapter_cls()
        trace_parent = current_traceparent()
        models = [adapter_cls.input_model.model_validate(dict(data)) for data in inputs]
        if job_ids is not None and len(job_ids) != len(models):
            raise ValueError("submit_many: one job id per input")

        # the same for every item: worked out once
        portal, initial = adapter_cls.portal_name(), machine.initial
        status = machine.status_of(initial)

        def accept() -> list[JobRecord]:
            # secret input fields sealed (reads the tenant's key, so here off the loop)
            stored = [self.rt.inputs.seal(tenant_id, model) for model in models]
            for _attempt in range(3):
                ids = list(job_ids) if job_ids is not None else new_ids("job", len(models))
                # a batchable adapter's items run in chunks: each row names its chunk
                chunk_of = plan_chunks(adapter_cls, models, ids)
                new = [
                    NewJob(
                        job_id=job_id,
                        tenant_id=tenant_id,
                        adapter=adapter_cls.name,
                        adapter_version=adapter_cls.version,
                        portal=portal,
                        state=initial,
                        status=status,
                        input=data,
                        lock_key=instance.lock_key(model),
                        priority=priority,
                        actor=actor,
                        trace_parent=trace_parent,
                        notes={CHUNK_NOTE: chunk_of[job_id]} if job_id in chunk_of else None,
                    )
                    for job_id, model, data in zip(ids, models, stored, strict=True)
                ]
                try:
                    with self.store.engine.begin() as conn:
                        records, _ = self.store.jobs.insert_many(
                            conn, new, new_only=True, on_records=early
                        )
                        if also is not None:
                            also(conn, records)
                        return records
                except JobIdTakenError:
                    if job_ids is not None:
                        raise  # the caller's ids: it decides (a retried claim finds its jobs)
                    continue  # fresh ids met existing ones (astronomically rare): redraw
            raise RuntimeError("submit_many: could not draw unused job ids")

        def accept_and_enqueue_chunks() -> tuple[list[JobRecord], list[JobRecord]]:
            records = accept()
            # the chunks at once, in this thread, right after the commit: the workers wait
            # for them. Handed to a task, they waited for the caller's answer to be built
            # first (the loop was busy with it: ~25 ms for 1,000 items), then for the GIL
            chunks, alone = group_chunks(records)
            if chunks:
                try:
                    enqueue_chunks(self.rt, chunks)
                except Exception:  # accepted durably already: the janitor enqueues them
                    log.exception("enqueueing accepted chunks failed", chunks=len(chunks))
            return records, alone

        records, alone = await asyncio.to_thread(accept_and_enqueue_chunks)
        if alone:
            task = asyncio.create_task(self._enqueue_accepted(alone))
            self._enqueueing.add(task)
            task.add_done_callback(self._enqueueing.discard)
        return records

    async def _enqueue_accepted(self, alone: list[JobRecord]) -> None:
        """The accepted jobs that run as their own workflows, enqueued in the background
        (DBOS builds its multi-row INSERT for ~1 s per 1,000 workflows)."""
        try:
            await asyncio.to_thread(self.rt.enqueue_many, alone)
        except Exception:  # accepted durably already: the janitor enqueues them
            log.exception("enqueueing accepted jobs failed", jobs=len(alone))

    async def get(self, job_id: str, *, tenant_id: str | None = None) -> JobRecord:
        return await asyncio.to_thread(self.store.jobs.get, job_id, tenant_id=tenant_id)

    async def list_jobs(self, **filters: Any) -> list[JobRecord]:
        return await asyncio.to_thread(self.store.jobs.search, **filters)

    async def events(self, job_id: str, *, tenant_id: str | None = None) -> list[EventRecord]:
        await self.get(job_id, tenant_id=tenant_id)
        return await asyncio.to_thread(self.store.jobs.events, job_id, tenant_id=tenant_id)

    async def escalations(self, **filters: Any) -> list[EscalationRecord]:
        return await asyncio.to_thread(self.store.jobs.escalations, **filters)

    def replay(self, job_id: str) -> Replay:
        job = self.store.jobs.get(job_id)
        state, paused, seq, transitions = replay_events(self.store.jobs.events(job_id))
        matches = state == job.state and paused == job.paused and seq == job.seq
        return Replay(job_id, state, paused, seq, transitions, matches)

    # -- steering one job ----------------------------------------------------------------

    def _control(
        self,
        job_id: str,
        *,
        action: str,
        actor: str,
        reason: str,
        updates: dict[str, Any],
        meta: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self.store.engine.begin() as conn:
            return apply_transition(
                conn,
                self.store,
                self.rt.machine_of,
                job_id,
                to_state="",
                actor=actor,
                reason=reason or action,
                meta={**(meta or {}), "action": action},
                updates=updates,
                kind="control",
            )

    async def cancel(
        self, job_id: str, *, actor: str, reason: str = "", tenant_id: str | None = None
    ) -> JobRecord:
        job = await self.get(job_id, tenant_id=tenant_id)
        machine = self.rt.machine_of(job.adapter)

        def write() -> dict[str, Any]:
            with self.store.engine.begin() as conn:
                for esc in self.store.jobs.escalations(job_id=job_id, status="unresolved"):
                    self.store.jobs.resolve_escalation(
                        conn, esc.id, actor=actor, decision={"action": "cancel", "actor": actor}
                    )
                return apply_transition(
                    conn,
                    self.store,
                    self.rt.machine_of,
                    job_id,
                    to_state=machine.engine.cancelled,
                    actor=actor,
                    reason=reason or "cancelled",
                    meta={"action": "cancel"},
                    updates={"cancel_requested": True, "reason": reason or "cancelled"},
                )

        result = await asyncio.to_thread(write)
        if "finished" in result and not await self._children_live(job_id):
            raise ConflictError(f"job {job_id} already ended in {result['finished']}")
        if "finished" not in result:
            await DBOS.cancel_workflow_async(job_id)
        for child in await self._children_live(job_id):
            await self.cancel(child.id, actor=actor, reason=reason or f"parent {job_id} cancelled")
        return await self.get(job_id)

    async def _children_live(self, job_id: str) -> list[JobRecord]:
        children = await asyncio.to_thread(self.store.jobs.children, job_id)
        return [c for c in children if not self.rt.machine_of(c.adapter).is_terminal(c.state)]

    async def note(
        self,
        job_id: str,
        action: str,
        *,
        actor: str,
        reason: str = "",
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Put an operator's action that changes no state on the job's timeline (a control
        event, e.g. `live.take`, with `meta` such as what it changed); nothing is written
        once the job has ended."""
        await asyncio.to_thread(
            self._control, job_id, action=action, actor=actor, reason=reason, updates={},
            meta=meta,
        )  # fmt: skip

    async def pause(
        self, job_id: str, *, actor: str, reason: str = "", tenant_id: str | None = None
    ) -> JobRecord:
        """Pause a job before its next step; a fan-out parent pauses every unfinished item."""
        job = await self.get(job_id, tenant_id=tenant_id)
        for child in await self._children_live(job_id):
            await self.pause(child.id, actor=actor, reason=reason or f"parent {job_id} paused")
        if job.paused:
            return job
        result = await asyncio.to_thread(
            self._control,
            job_id,
            action="pause",
            actor=actor,
            reason=reason,
            updates={"paused": True},
        )
        if "finished" in result:
            raise ConflictError(f"job {job_id} already ended in {result['finished']}")
        return await self.get(job_id)

    async def resume(
        self, job_id: str, *, actor: str, reason: str = "", tenant_id: str | None = None
    ) -> JobRecord:
        job = await self.get(job_id, tenant_id=tenant_id)
        for child in await self._children_live(job_id):
            await self.resume(child.id, actor=actor, reason=reason or f"parent {job_id} resumed")
        if not job.paused:
            return job
        result = await asyncio.to_thread(
            self._control,
            job_id,
            action="resume",
            actor=actor,
            reason=reason,
            updates={"paused": False},
        )
        if "finished" in result:
            raise ConflictError(f"job {job_id} already ended in {result['finished']}")
        await _wake(job_id)
        return await self.get(job_id)

    async def provide_input(
        self,
        job_id: str,
        name: str,
        value: Any,
        *,
        actor: str,
        tenant_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobRecord:
        """Hand a job the input it waits (or will wait) for, e.g. a one-time code."""
        job = await self.get(job_id, tenant_id=tenant_id)
        adapter = self.rt.registry.get(job.adapter)
        if name not in adapter.inputs:
            known = ", ".join(sorted(adapter.inputs)) or "none"
            raise ConflictError(f"adapter {job.adapter} takes no input {name!r} (takes: {known})")
        if self.rt.machine_of(job.adapter).is_terminal(job.state):
            raise ConflictError(f"job {job_id} already ended in {job.state}")
        await DBOS.send_async(
            job_id,
            {"value": value, "actor": actor},
            topic=f"input:{name}",
            idempotency_key=idempotency_key,
        )
        return job

    async def decide(
        self,
        escalation_id: str,
        action: Decision,
        *,
        actor: str,
        value: Any = None,
        reason: str = "",
        selectors: Mapping[str, str] | None = None,
        tenant_id: str | None = None,
    ) -> EscalationRecord:
        """An operator's decision on an escalation: retry the step, resume with a value,
        fail or cancel, recorded atomically (see `portwright.orchestrator._decisions`). A
        selector patch, if given, becomes the adapter's next version first, and every other
        job parked on that selector retries too."""
        from portwright.orchestrator._decisions import decide

        outcome = await decide(
            self, escalation_id, action, actor=actor, value=value, reason=reason,
            selectors=selectors, tenant_id=tenant_id,
        )  # fmt: skip
        return outcome.escalation

    def patch_selectors(
        self, adapter: str, selectors: dict[str, str], *, actor: str, reason: str
    ) -> SelectorMapRecord:
        """A new selector-map version for `adapter`, audited; later attempts use it."""
        adapter_cls = self.rt.registry.get(adapter)
        unknown = sorted(set(selectors) - set(adapter_cls.selectors))
        if unknown:
            raise ValueError(f"adapter {adapter} has no selector named {', '.join(unknown)}")
        before = self.rt.selectors_for(adapter_cls)
        # each version holds every override so far: patching one key keeps the earlier fixes
        latest = self.store.intel.latest_selectors(adapter)
        overrides = {**(latest.selectors if latest is not None else {}), **selectors}
        record = self.store.intel.add_selectors(adapter, overrides, actor=actor, reason=reason)
        self.store.audit.record(
            actor=actor,
            action="selectors.patch",
            target_type="adapter",
            target_id=adapter,
            before={k: before.selectors.get(k) for k in selectors},
            after={**selectors, "version": record.version},
            reason=reason,
        )
        self.rt.forget_selectors(adapter)
        return record

    # -- fan-out items -------------------------------------------------------------------

    async def items(self, parent_id: str, *, tenant_id: str | None = None) -> list[JobRecord]:
        """Each item's latest attempt (a child job), in item order."""
        await self.get(parent_id, tenant_id=tenant_id)
        children = await asyncio.to_thread(self.store.jobs.children, parent_id)
        latest: dict[str, JobRecord] = {}
        for child in children:
            latest[child.item_key or child.id] = child
        return sorted(latest.values(), key=lambda c: c.id.split(".r")[0])

    async def retry_items(
        self,
        parent_id: str,
        *,
        actor: str,
        item_keys: list[str] | None = None,
        tenant_id: str | None = None,
    ) -> list[JobRecord]:
        """Run failed items again (all, or those named); succeeded ones are left untouched."""
        items = await self.items(parent_id, tenant_id=tenant_id)
        chosen = [
            i for i in items if i.status == "failed" and (not item_keys or i.item_key in item_keys)
        ]
        children = await asyncio.to_thread(self.store.jobs.children, parent_id)
        attempts = Counter(c.id.split(".r")[0] for c in children)
        retried = []
        for item in chosen:
            base = item.id.split(".r")[0]
            attempt = attempts[base]
            record = await self.submit(
                tenant_id=item.tenant_id,
                adapter=item.adapter,
                input=item.input,
                job_id=f"{base}.r{attempt}",
                actor=actor,
                parent_id=parent_id,
                item_key=item.item_key,
            )
            retried.append(record)
        await asyncio.to_thread(
            self.store.audit.record,
            actor=actor, action="items.retry", target_type="job", target_id=parent_id,
            before={"failed": [i.item_key for i in chosen]},
            after={"retried": [r.id for r in retried]},
            tenant_id=items[0].tenant_id if items else None,
        )  # fmt: skip
        return retried

    # -- steering a portal ---------------------------------------------------------------

    async def portals(self) -> list[PortalRecord]:
        return await asyncio.to_thread(self.store.portals.all)

    async def pause_portal(self, portal: str, *, actor: str, reason: str = "") -> PortalRecord:
        before = await asyncio.to_thread(self.store.portals.get, portal)
        after = await asyncio.to_thread(
            self.store.portals.set_paused, portal, paused=True, reason=reason or "paused"
        )
        await asyncio.to_thread(
            self.store.audit.record,
            actor=actor,
            action="portal.pause",
            target_type="portal",
            target_id=portal,
            before={"paused": before.paused},
            after={"paused": True},
            reason=reason,
        )
        return after

    async def resume_portal(self, portal: str, *, actor: str, reason: str = "") -> PortalRecord:
        before = await asyncio.to_thread(self.store.portals.get, portal)
        after = await asyncio.to_thread(
            self.store.portals.set_paused, portal, paused=False, reason=None
        )
        await asyncio.to_thread(
            self.store.audit.record,
            actor=actor,
            action="portal.resume",
            target_type="portal",
            target_id=portal,
            before={"paused": before.paused},
            after={"paused": False},
            reason=reason,
        )
        ids = await asyncio.to_thread(
            self.store.jobs.ids_where, portal=portal, statuses=("queued", "running", "waiting")
        )
        for job_id in ids:
            await _wake(job_id)
        return after

    async def extend_portal_cooldown(
        self, portal: str, *, seconds: float, actor: str, reason: str = ""
    ) -> PortalRecord:
        """Cool the portal down for `seconds` from now (an operator's call; no effect when
        it already cools down longer). Audited as `portal.cooldown` with cause "operator"."""
        await asyncio.to_thread(
            self.store.portals.extend_cooldown,
            portal,
            until=time.time() + seconds,
            reason=reason or f"cooled down by {actor}",
            cause="operator",
            actor=actor,
        )
        return await asyncio.to_thread(self.store.portals.get, portal)

    async def end_portal_cooldown(
        self, portal: str, *, actor: str, reason: str = ""
    ) -> PortalRecord:
        """End the portal's cooldown now (audited); its jobs that wait it out go on when they
        next read the gate (within `COOLDOWN_RECHECK_S`, 10 s)."""
        await asyncio.to_thread(
            self.store.portals.end_cooldown,
            portal,
            reason=reason or f"cooldown ended by {actor}",
            actor=actor,
        )
        return await asyncio.to_thread(self.store.portals.get, portal)


async def _wake(job_id: str) -> None:
    """Tell a waiting job it may go on. A batch item still in its chunk has no workflow of
    its own yet: its chunk reads the job's flags when it reaches it, so nothing is lost."""
    with contextlib.suppress(DBOSNonExistentWorkflowError):
        await DBOS.send_async(job_id, {"action": "resume"}, topic="control")
