"""The embedded runtime: the store, DBOS, one queue per portal, and the janitor.

One per process (DBOS is a process singleton). `portwright up`, `worker`,
`demo` and the tests each start one::

    with Runtime(Settings(), registry) as runtime:
        service = JobService(runtime)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog
from dbos import DBOS, Queue, SetEnqueueOptions, SetWorkflowID, SQLAlchemyDatasource

from portwright.adapters import AdapterRegistry
from portwright.notifications import Notifier, alert_staff, channels_from
from portwright.observability import PROCESS, current_traceparent
from portwright.orchestrator._chunks import (
    CHUNK_NOTE,
    chunk_polling_interval,
    chunk_queue_name,
    chunk_share,
    enqueue_chunks,
    group_chunks,
    live_workers,
    plan_chunks,
)
from portwright.orchestrator._host import DbosHost, JobPorts
from portwright.orchestrator._housekeeping import apply_housekeeping_schedule
from portwright.orchestrator._janitor import Janitor
from portwright.orchestrator._probes import apply_probe_schedules, register_probe_queue
from portwright.orchestrator._queue_probe import mark_enqueued
from portwright.orchestrator._results import use_links
from portwright.orchestrator._rollouts import Rollouts
from portwright.orchestrator._sealed_input import InputSealer
from portwright.orchestrator._tx import site_breaker
from portwright.orchestrator._workflow import job_workflow, set_runtime
from portwright.resources import (
    CaptchaSolver,
    DirectIdentity,
    IdentityProvider,
    SecretsProvider,
    StaticSecrets,
    solver_chain_from,
)
from portwright.resources.ssrf import UrlGuard
from portwright.results import ResultLinks, links_from
from portwright.sdk import Adapter, SelectorMap, StateMachine
from portwright.settings import Settings
from portwright.store import (
    BlobStore,
    BreakerPolicy,
    JobRecord,
    NewJob,
    Store,
    blob_store_from,
    is_database_unavailable,
    site_name,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from portwright.engines import Fleet

__all__ = ["Runtime", "queue_name"]

log = structlog.get_logger("portwright.runtime")


PROVIDER_COOLDOWN_S = 20.0
STAFF_ALERT_QUIET_S = 300.0  # one staff alert per kind per this many seconds, per process
_SELECTORS_TTL_S = 1.0  # how long an adapter's selectors (with the operator's patch) are cached


def _solver_from(settings: Settings, guard: UrlGuard) -> CaptchaSolver | None:
    """The captcha chain the settings configure (docs/configuration.md), if any."""
    return solver_chain_from(settings, guard)


def queue_name(portal: str, tier: str | None = None) -> str:
    """The portal's queue, or its engine tier's (`Adapter.tiers`)."""
    return f"portal-{portal}" if tier is None else f"portal-{portal}-{tier}"


class Runtime:
    """Owns DBOS and the store for this process."""

    def __init__(
        self,
        settings: Settings,
        registry: AdapterRegistry,
        *,
        run_workers: bool = True,
        blobs: BlobStore | None = None,
        identity: IdentityProvider | None = None,
        secrets: SecretsProvider | None = None,
        captcha: CaptchaSolver | None = None,
        breaker_policy: BreakerPolicy | None = None,
        fleet: Fleet | None = None,
        guard: UrlGuard | None = None,
    ) -> None:
        self.settings = settings
        # The SSRF guard on every request a job makes (sc.http, the ladder, the step's
        # browser): public addresses, plus settings.url_allowlist.
        self.guard = guard or UrlGuard.from_allowlist(settings.url_allowlist)
        self.registry = registry
        self.run_workers = run_workers
        self.executor_id = settings.executor_id()
        self.blobs: BlobStore = blobs or blob_store_from(settings)
        # The fleet (browsers, proxies, solvers, the engine ladder) is optional; its
        # proxy pool and solver chain stand in when no identity or captcha is given.
        self.fleet = fleet
        if fleet is not None:
            fleet.add_guard(self.guard)
        fleet_proxies = fleet.proxies if fleet is not None else None
        self.identity: IdentityProvider = identity or fleet_proxies or DirectIdentity()
        self.secrets: SecretsProvider = secrets or StaticSecrets({})
        self.inputs = InputSealer(self.secrets)  # secret input fields, sealed at rest
        fleet_captcha = fleet.captcha if fleet is not None else None
        self.captcha = captcha or fleet_captcha or _solver_from(settings, self.guard)
        self.breaker_policy = breaker_policy or BreakerPolicy()
        self.rollouts = Rollouts(self)  # which adapter version new jobs start on
        # job id -> how many times it sat down to wait because it or its portal was paused
        # (while it runs in this process; diagnostics, and tests that must know a job is held)
        self.pause_waits: Counter[str] = Counter()
        self._store: Store | None = None
        self._datasource: SQLAlchemyDatasource | None = None
        self._host: DbosHost | None = None
        self._queues: dict[str, Queue] = {}
        self.chunk_slots: dict[str, int] = {}  # batchable portal -> its chunks run at once
        self._janitor: Janitor | None = None
        self._selector_cache: dict[str, tuple[float, SelectorMap]] = {}
        self._notifier: Notifier | None = None
        self._lock = threading.Lock()
        self._staff_alerted: dict[str, float] = {}
        for source in (self.identity, self.captcha):  # the proxy pool, the solver chain
            if hasattr(source, "on_alert") and getattr(source, "on_alert", None) is None:
                setattr(source, "on_alert", self.staff_alert)  # noqa: B010 - not every source has it
        self.links: ResultLinks | None = None  # signs result links (made at start)
        self.started = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Runtime:
        if self.started:
            return self
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.links = links_from(settings, self.blobs)
        use_links(self.links)
        self._store = Store.open(settings.app_database_url)
        if self.fleet is not None:
            self.fleet.bind(self._store)
            if self.run_workers:
                self.fleet.warm()  # before DBOS hands this worker work, not in its first fetches
        self._host = DbosHost(settings, self.executor_id)
        self._datasource = self._host.launch(
            self._store, run_workers=self.run_workers, before_launch=lambda: set_runtime(self)
        )
        for adapter in self.registry.all():
            self.register_portal(adapter)
        register_probe_queue()
        if self.run_workers:
            self._janitor = Janitor(self)
            self._janitor.start()
            apply_housekeeping_schedule(self)
            apply_probe_schedules(self)  # each portal's synthetic probe (a DBOS schedule)
        self.started = True
        log.info("runtime started", executor_id=self.executor_id, workers=self.run_workers)
        return self

    def stop(self, *, drain_s: float = 0.0) -> None:
        """Stop. With `drain_s` (a worker told to stop by a signal): take no more work, let
        the jobs running here reach their end or a durable wait, for at most `drain_s`,
        heartbeating all along — then stop; what still runs resumes on another worker."""
        if not self.started:
            return
        if drain_s > 0 and self._host is not None:
            if self._janitor is not None:
                self._janitor.drain()
            began = time.monotonic()
            log.info("draining: taking no more work", deadline_s=drain_s)
            self._host.destroy(drain_s=drain_s)
            log.info("drained", seconds=round(time.monotonic() - began, 1))
        if self._janitor is not None:
            self._janitor.stop()
            try:
                self.store.workers.stopped(self.executor_id)
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                # Stopping during an outage: the row stays "alive" until others see it silent.
                log.warning("could not mark this worker stopped: database unavailable")
        if self.fleet is not None:
            self.fleet.close()  # on DBOS's loop (still running, unless a drain ended it)
        if self._host is not None:
            self._host.destroy()
        set_runtime(None)
        use_links(None)
        self.store.close()
        self.started = False

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def trigger_schedule(self, name: str) -> None:
        """Run a schedule's workflow now (e.g. `HOUSEKEEPING_SCHEDULE` after an outage);
        call it off the event loop."""
        DBOS.trigger_schedule(name)

    def register_portal(self, adapter: type[Adapter]) -> None:  # type: ignore[type-arg]
        portal = adapter.portal_name()
        record = self.store.portals.ensure(portal, max_concurrency=adapter.max_concurrency)
        self._queues[portal] = DBOS.register_queue(
            queue_name(portal),
            global_concurrency=record.max_concurrency,
            worker_concurrency=min(self.settings.worker_concurrency, record.max_concurrency),
            partition_concurrency=1,
            polling_interval_sec=self.settings.queue_polling_interval_s,
            on_conflict="always_update",
        )
        for tier in adapter.tiers:  # a queue per engine tier, each with its own cap
            cap = self.settings.tier_concurrency.get(tier, record.max_concurrency)
            self._queues[queue_name(portal, tier)] = DBOS.register_queue(
                queue_name(portal, tier),
                global_concurrency=cap,
                worker_concurrency=min(self.settings.worker_concurrency, cap),
                partition_concurrency=1,
                polling_interval_sec=self.settings.queue_polling_interval_s,
                on_conflict="always_update",
            )
        if adapter.batchable:  # its batches' chunks: each fetches batch_concurrency at once
            chunks = max(1, record.max_concurrency // max(1, adapter.batch_concurrency))
            self.chunk_slots[portal] = chunks
            self._queues[chunk_queue_name(portal)] = DBOS.register_queue(
                chunk_queue_name(portal),
                global_concurrency=chunks,  # each worker its share (`balance_chunk_queues`)
                worker_concurrency=chunk_share(
                    chunks, live_workers(self), self.settings.worker_concurrency
                ),
                polling_interval_sec=chunk_polling_interval(self.settings),
                on_conflict="always_update",
            )

    # -- the two halves: DBOS, and what a job needs -----------------------------------------

    @property
    def host(self) -> DbosHost:
        """DBOS in this process (after `start`)."""
        if self._host is None:
            raise RuntimeError("runtime not started")
        return self._host

    @property
    def ports(self) -> JobPorts:
        """The typed ports a job's steps use (after `start`: the store is open)."""
        return JobPorts(
            store=self.store, registry=self.registry, identities=self.identity,
            secrets=self.secrets, blobs=self.blobs, fleet=self.fleet, guard=self.guard,
            captcha=self.captcha,
        )  # fmt: skip

    # -- accessors -----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("runtime not started")
        return self._store

    @property
    def datasource(self) -> SQLAlchemyDatasource:
        if self._datasource is None:
            raise RuntimeError("runtime not started")
        return self._datasource

    @property
    def janitor(self) -> Janitor | None:
        return self._janitor

    @property
    def isolation(self) -> Any:
        # SQLite serialises writers anyway; on Postgres we lock job rows FOR UPDATE.
        return "SERIALIZABLE" if self.store.dialect == "sqlite" else "READ COMMITTED"

    def machine_of(self, adapter: str) -> StateMachine:
        return self.registry.get(adapter).machine

    # -- enqueueing ----------------------------------------------------------------------

    def registered_queue(self, key: str) -> Queue | None:
        """A DBOS queue this process registered: by portal name (its jobs' queue) or by
        `chunk_queue_name(portal)` (its chunks')."""
        return self._queues.get(key)

    def has_queue(self, portal: str) -> bool:
        """Whether this process can enqueue the portal's jobs (its adapter is installed)."""
        return portal in self._queues

    def _queue_for(self, job: JobRecord) -> Queue:
        queue = self._queues.get(job.portal)
        if queue is None:
            raise LookupError(f"no queue for portal {job.portal!r}")
        if job.adapter in self.registry:  # its engine tier's queue, when it has tiers
            adapter = self.registry.get(job.adapter)
            tier = adapter.tier_of(job.input) if adapter.tiers else None
            if tier is not None:
                queue = self._queues.get(queue_name(job.portal, tier), queue)
        return queue

    def _options(self, job: JobRecord) -> SetEnqueueOptions:
        return SetEnqueueOptions(
            queue_partition_key=job.lock_key or job.id,
            priority=job.priority if job.priority > 0 else None,
        )

    async def enqueue(self, job: JobRecord) -> None:
        """Enqueue the job's workflow (a no-op if it already exists: the id is the job id)."""
        queue = self._queue_for(job)
        with SetWorkflowID(job.id), self._options(job):
            await queue.enqueue_async(job_workflow, job.id, snapshot_of(job))
        mark_enqueued(queue.name)  # this process's pollers look at once (`_queue_probe`)

    def enqueue_many(self, jobs: Sequence[JobRecord]) -> int:
        """Enqueue many jobs' workflows in one DBOS transaction (existing ones are skipped);
        how many were new. This is DBOS's own batch enqueue (`prepare_enqueued_workflow` +
        `SystemDatabase.init_workflows`, what its Kafka consumer uses): the same ENQUEUED
        status and input rows `Queue.enqueue` writes one at a time, multi-row."""
        from dbos._core import prepare_enqueued_workflow
        from dbos._dbos import _get_dbos_instance

        if not jobs:
            return 0
        dbos = _get_dbos_instance()
        statuses = []
        queues: set[str] = set()
        for job in jobs:
            queues.add(self._queue_for(job).name)
            status = prepare_enqueued_workflow(
                dbos,
                job_workflow,
                (job.id, snapshot_of(job)),
                {},
                queue_name=self._queue_for(job).name,
                workflow_id=job.id,
                queue_partition_key=job.lock_key or job.id,
            )
            if job.priority > 0:
                status["priority"] = job.priority
            if job.parent_id is not None:  # a fan-out item: its parent's child, as before
                status["parent_workflow_id"] = job.parent_id
            statuses.append(status)
        created = len(dbos._sys_db.init_workflows(statuses))
        mark_enqueued(queues)
        return created

    def insert_children(
        self, parent_id: str, adapter: str, items: list[tuple[str, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Validate and insert one child job per item, then enqueue them all: one multi-row
        INSERT per table and one DBOS transaction, not a round trip per item. Ids derive
        from the parent, so a re-run (a retried step) skips what exists: idempotent."""
        parent = self.store.jobs.get(parent_id)
        child_cls = self.rollouts.choose(adapter, parent.tenant_id, parent_id)
        machine = child_cls.machine
        instance = child_cls()
        trace_parent = current_traceparent()
        models = [child_cls.input_model.model_validate(data) for _key, data in items]
        ids = [f"{parent_id}.{index:04d}" for index in range(len(items))]
        chunk_of = plan_chunks(child_cls, models, ids)  # a batchable adapter's run in chunks
        new = []
        for index, ((key, _data), model) in enumerate(zip(items, models, strict=True)):
            stored = self.inputs.seal(parent.tenant_id, model)
            new.append(
                NewJob(
                    job_id=ids[index],
                    tenant_id=parent.tenant_id,
                    adapter=child_cls.name,
                    adapter_version=child_cls.version,
                    portal=child_cls.portal_name(),
                    state=machine.initial,
                    status=machine.status_of(machine.initial),
                    input=stored,
                    lock_key=instance.lock_key(model),
                    priority=0,
                    actor=f"job:{parent_id}",
                    parent_id=parent_id,
                    item_key=key,
                    trace_parent=trace_parent,
                    notes={CHUNK_NOTE: chunk_of[ids[index]]} if ids[index] in chunk_of else None,
                )
            )
        with self.store.engine.begin() as conn:
            records, _created = self.store.jobs.insert_many(conn, new)
        chunks, alone = group_chunks(records)
        enqueue_chunks(self, chunks)
        self.enqueue_many(alone)
        return [{"id": r.id, "portal": r.portal, "lock_key": r.lock_key} for r in records]

    def child_progress(self, parent_id: str) -> dict[str, int]:
        latest: dict[str, JobRecord] = {}
        for child in self.store.jobs.children(parent_id):
            latest[child.item_key or child.id] = child  # ids sort by time: the last one wins
        counts: dict[str, int] = {"total": len(latest)}
        for child in latest.values():
            counts[child.status] = counts.get(child.status, 0) + 1
        counts["provider_failures"] = self.store.jobs.child_event_count(
            parent_id, reason_like="provider failing", since=time.time() - 60
        )
        return counts

    def staff_alert(self, kind: str, title: str, detail: str) -> None:
        """Tell staff on the chat webhook (`staff_chat_webhook_url`): queued durably, sent by
        the gateway's notification sender; at most one per kind per `STAFF_ALERT_QUIET_S`
        in this process. Never blocks the caller (the proxy pool, the solver chain)."""
        if not self.settings.staff_chat_webhook_url or self._store is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._staff_alerted.get(kind, -STAFF_ALERT_QUIET_S) < STAFF_ALERT_QUIET_S:
                return
            self._staff_alerted[kind] = now
        threading.Thread(
            target=self._queue_staff_alert, args=(kind, title, detail), daemon=True
        ).start()

    def _queue_staff_alert(self, kind: str, title: str, detail: str) -> None:
        try:
            alert_staff(
                self.store,
                self.customer_notifier.channels,
                self.settings.staff_chat_webhook_url,
                kind=kind,
                title=title,
                detail=detail,
            )
            log.warning("staff alerted", kind=kind, title=title)
        except Exception:
            log.exception("could not queue a staff alert", kind=kind)

    def alert(self, job_id: str, kind: str, reason: str, details: dict[str, Any]) -> None:
        """Open a non-parking escalation; a failing provider also slows the children's portal."""
        job = self.store.jobs.get(job_id)
        if self.store.jobs.open_alert(job, kind=kind, reason=reason, details=details):
            log.warning("alert raised", job_id=job_id, kind=kind, reason=reason)
            self.staff_alert(kind, f"{kind} in job {job_id}", reason)
        if kind == "provider_failing":
            portals = {c.portal for c in self.store.jobs.children(job_id)}
            for portal in portals:
                self.store.portals.extend_cooldown(
                    portal,
                    until=time.time() + PROVIDER_COOLDOWN_S,
                    reason=reason,
                    cause="provider_failing",
                )

    # -- the customer in the loop (called from steps) ------------------------------------

    @property
    def customer_notifier(self) -> Notifier:
        """Queues messages to a tenant's users; the gateway's sender delivers them."""
        with self._lock:
            if self._notifier is None:
                self._notifier = Notifier(self.store, channels_from(self.settings))
            return self._notifier

    def _job_link(self, job_id: str) -> str:
        return f"{self.settings.links_base}/app/jobs/{job_id}"

    def ask_customer(self, job_id: str, name: str, question: str, deadline: float) -> int:
        """Tell the job's tenant's users that it waits for their `name`; how many messages."""
        job = self.store.jobs.get(job_id)
        context: dict[str, object] = {
            "job_id": job_id,
            "question": question,
            "deadline": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(deadline)),
            "link": self._job_link(job_id),
        }
        ids = self.customer_notifier.notify_tenant(
            job.tenant_id, "answer_needed", context, roles={"owner", "member"}
        )
        log.info("asked the customer", job_id=job_id, input=name, messages=len(ids))
        return len(ids)

    def customer_timed_out(self, job_id: str, name: str, question: str) -> int:
        """Tell the tenant's users their answer did not come in time; how many messages."""
        job = self.store.jobs.get(job_id)
        context: dict[str, object] = {
            "job_id": job_id,
            "question": question,
            "link": self._job_link(job_id),
        }
        ids = self.customer_notifier.notify_tenant(
            job.tenant_id, "answer_expired", context, roles={"owner", "member"}
        )
        return len(ids)

    def job_ended(self, job_id: str) -> int:
        """Tell a top-level job's customers how it ended: `job_failed`, `job_succeeded`
        (a booking confirmed, an application sent), or for an order that fanned out
        `report_ready` with a link to the portal's reports; how many messages were queued.
        A failure to queue is logged, never the job's problem."""
        try:
            return self._job_ended(job_id)
        except Exception:
            log.exception("could not queue the job's end notification", job_id=job_id)
            return 0

    def _job_ended(self, job_id: str) -> int:
        notifier = self.customer_notifier
        if not notifier.channels:
            return 0
        job = self.store.jobs.get(job_id)
        if job.parent_id is not None or job.status not in ("succeeded", "failed"):
            return 0
        context: dict[str, object] = {
            "job_id": job_id,
            "adapter": job.adapter,
            "link": self._job_link(job_id),
        }
        if job.status == "failed":
            event = "job_failed"
            context["reason"] = job.reason or "no reason recorded"
        else:
            progress = self.child_progress(job_id)
            if progress.get("total"):
                event = "report_ready"
                context["link"] = f"{self.settings.links_base}/app/reports"
                shown = ", ".join(
                    f"{n} {status}"
                    for status, n in sorted(progress.items())
                    if status not in ("total", "provider_failures") and n
                )
                context["summary"] = f"{progress['total']} items ({shown})"
            else:
                event = "job_succeeded"
                output = job.output or {}
                context["summary"] = ", ".join(
                    f"{k}: {v}"
                    for k, v in sorted(output.items())
                    if isinstance(v, str | int | float | bool)
                )[:500]
        ids = notifier.notify_tenant(job.tenant_id, event, context, roles={"owner", "member"})
        return len(ids)

    # -- called from inside workflows (steps) --------------------------------------------

    def load_snapshot(self, job_id: str) -> dict[str, Any]:
        return snapshot_of(self.store.jobs.get(job_id))

    def fail_unknown_adapter(self, job_id: str) -> None:
        job = self.store.jobs.get(job_id)
        reason = (
            f"adapter {job.adapter!r} version {job.adapter_version!r} is not installed in "
            "this worker"
        )
        with self.store.engine.begin() as conn:
            locked = self.store.jobs.lock(conn, job_id)
            self.store.jobs.write_event(
                conn,
                locked,
                kind="transition",
                actor="engine",
                to_state="FAILED",
                status="failed",
                reason=reason,
                meta={},
                updates={"reason": reason, "error_class": "adapter_error"},
                terminal=True,
            )

    def cached_selectors(self, adapter: type[Adapter]) -> SelectorMap | None:  # type: ignore[type-arg]
        """`selectors_for`'s answer if it is cached and fresh (no read), else None: a step
        takes it on the event loop and goes to a thread only for the read."""
        with self._lock:
            cached = self._selector_cache.get(f"{adapter.name}@{adapter.version}")
        if cached is not None and time.monotonic() - cached[0] < _SELECTORS_TTL_S:
            return cached[1]
        return None

    def selectors_for(self, adapter: type[Adapter]) -> SelectorMap:  # type: ignore[type-arg]
        """The adapter's selectors with the latest operator patch (cached for one second)."""
        cached = self.cached_selectors(adapter)
        if cached is not None:
            return cached
        now = time.monotonic()
        base = SelectorMap(dict(adapter.selectors), 0)
        patch = self.store.intel.latest_selectors(adapter.name)
        selectors = base if patch is None else base.merged(patch.selectors, patch.version)
        with self._lock:
            self._selector_cache[f"{adapter.name}@{adapter.version}"] = (now, selectors)
        return selectors

    def forget_selectors(self, adapter: str) -> None:
        with self._lock:
            for key in [k for k in self._selector_cache if k.split("@")[0] == adapter]:
                del self._selector_cache[key]

    def read_gate(self, job_id: str, portal: str) -> dict[str, Any]:
        """What the job must wait for before its next attempt."""
        job = self.store.jobs.get(job_id)
        machine = self.machine_of(job.adapter)
        now = time.time()
        if machine.is_terminal(job.state):
            return {"finished": job.state, "paused": False, "wait_until": None, "now": now}
        record = self.store.portals.get(portal)
        paused = job.paused or record.paused
        wait_until: float | None = None
        why = ""
        if record.cooldown_until is not None and record.cooldown_until > now:
            wait_until = record.cooldown_until
            why = f"portal cooling down: {record.cooldown_reason}"
        if not paused and wait_until is None:
            allowed, retry_at = self.store.portals.allow(
                f"portal:{portal}", policy=self.breaker_policy
            )
            if not allowed and retry_at is not None:
                wait_until = retry_at
                why = "circuit open"
        return {
            "finished": None,
            "paused": paused,
            "wait_until": wait_until,
            "why": why,
            "now": now,
        }

    def site_of(self, job: JobRecord, inputs: dict[str, Any] | None = None) -> str | None:
        """The job's target site (`Adapter.site_of`), or None. With `inputs`, the input
        validated on the way is kept there, {job id: (adapter class, input)}, for a caller
        that runs the job next (a chunk's item: its input then opens and validates once)."""
        if job.adapter not in self.registry:
            return None
        adapter = self.registry.get(job.adapter)
        try:
            opened = self.inputs.open(job.tenant_id, adapter.input_model, job.input)
            data = adapter.input_model.model_validate(opened)
            site = adapter().site_of(data)
        except Exception:  # noqa: BLE001 - an unreadable input is its own workflow's to fail
            return None
        if inputs is not None:
            inputs[job.id] = (adapter, data)
        return None if site is None else site.host

    def sites_holding(
        self,
        jobs: Sequence[JobRecord],
        conn: sa.Connection | None = None,
        *,
        inputs: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """{job id: why it must wait} for jobs whose target site (or the tenant's use of
        it) is cooling down or behind a breaker that is not closed (a chunk's items).
        Read in `conn` if given (one connection for all of a sub-chunk's reads): the sites'
        rows in one statement, their breakers in another. `inputs`: see `site_of`."""
        if conn is None:
            with self.store.engine.connect() as opened:
                return self.sites_holding(jobs, opened, inputs=inputs)
        # (job id, host, its site's name, the tenant's use of it, the site's breaker)
        sited: list[tuple[str, str, str, str, str]] = []
        for job in jobs:
            host = self.site_of(job, inputs)
            if host:
                own, tenants = (
                    site_name(job.portal, host),
                    site_name(job.portal, host, job.tenant_id),
                )
                sited.append((job.id, host, own, tenants, site_breaker(job.portal, host)))
        if not sited:
            return {}
        now = time.time()
        names = sorted({name for _, _, own, tenants, _ in sited for name in (own, tenants)})
        cooling = {
            row.name: f"site {row.host} cooling down: {row.cooldown_reason}"
            for row in self.store.sites.read(conn, names)
            if row.cooldown_until is not None and row.cooldown_until > now
        }
        # the breakers of the sites not cooling down (a cooling site's items wait anyway)
        wanted = {
            breaker
            for _, _, own, tenants, breaker in sited
            if own not in cooling and tenants not in cooling
        }
        states = self.store.portals.breaker_states(conn, sorted(wanted))
        held: dict[str, str] = {}
        for job_id, host, own, tenants, breaker in sited:
            why = cooling.get(own) or cooling.get(tenants)
            if why is None:
                state = states[breaker]
                if state != "closed":
                    why = f"site {host} circuit {state}"
            if why is not None:
                held[job_id] = why
        return held

    def record_portal_outcome(self, portal: str, *, ok: bool, site: str | None = None) -> None:
        """Feed the breaker of the portal or, given one, of its target `site` (a host)."""
        if site:
            self.store.portals.record_outcome(
                site_breaker(portal, site), ok=ok, policy=self.breaker_policy
            )
            if ok and any(
                row.degraded_since is not None
                for row in self.store.sites.get_many([site_name(portal, site)])
            ):
                self.store.sites.set_degraded(portal, site, reason=None)
            return
        self.store.portals.record_outcome(f"portal:{portal}", ok=ok, policy=self.breaker_policy)
        if ok and self.store.portals.get(portal).degraded_since is not None:
            self.store.portals.set_degraded(portal, reason=None)

    def attach_evidence(
        self,
        job: JobRecord,
        *,
        step: str,
        kind: str,
        data: bytes | str,
        content_type: str,
        meta: dict[str, Any],
    ) -> str:
        raw = data.encode() if isinstance(data, str) else data
        suffix = {
            "text/html": "html",
            "image/png": "png",
            "application/zip": "zip",
            "application/json": "json",
        }.get(content_type, "txt")
        key = f"{job.tenant_id}/{job.id}/{step}-{time.time_ns()}.{suffix}"
        held: bytes | None = None
        try:
            self.blobs.put(key, raw, content_type=content_type)
        except ValueError:
            raise  # a bad key is a bug, not an outage
        except Exception as exc:  # noqa: BLE001 - the blob store is down: keep the bytes here
            held = raw
            PROCESS.blob_held(kind)
            log.warning(
                "blob store unavailable: evidence kept in the database until it is back",
                job_id=job.id,
                kind=kind,
                error=f"{type(exc).__name__}: {exc}",
            )
        return self.store.jobs.add_evidence(
            job_id=job.id,
            tenant_id=job.tenant_id,
            step=step,
            kind=kind,
            blob_key=key,
            content_type=content_type,
            size=len(raw),
            meta={k: v for k, v in meta.items() if v is None or isinstance(v, str | int | float)},
            data=held,
        )


def snapshot_of(job: JobRecord) -> dict[str, Any]:
    """What a job's workflow starts from: given with the enqueue (a workflow input, so
    starting the job reads nothing), or read by its `load` step when not given."""
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "adapter": job.adapter,
        "adapter_version": job.adapter_version,
        "portal": job.portal,
        "state": job.state,
        "seq": job.seq,
        "input": job.input,
        "trace_parent": job.trace_parent,
    }


def migrate_databases(settings: Settings) -> dict[str, str]:
    """Create or upgrade every schema Portwright uses (app tables, DBOS system and checkpoints)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.app_database_url)
    try:
        from portwright.store import current_revision

        revision = current_revision(store.engine) or "none"
    finally:
        store.close()
    DBOS.migrate(settings.dbos_database_url)
    SQLAlchemyDatasource.migrate(settings.app_database_url)
    return {"app": revision, "system": settings.dbos_database_url.split("@")[-1]}
