"""Chunk workflows: a batch of a batchable adapter's jobs, run many items per workflow.

A batch accepted by `JobService.submit_many` splits its batchable items into chunks of
`Adapter.batch_size` and enqueues one DBOS workflow per chunk (`chunk_workflow`) instead of
one per job; each item's row carries its chunk's id in its notes. A chunk walks its items
in sub-chunks of `SUB_CHUNK` (the size is the workflow's argument, so a chunk recovered by
code of another size walks the parts its checkpoints were written for), each ONE
checkpointed step (`subchunk:N`), `PIPELINE`
sub-chunks at once (the next sub-chunk's fetch overlaps the tail of this one's and its
record; the chunk's items in flight stay bounded by `batch_concurrency`). The step:

1. fetches: runs each item's adapter (`Adapter.run`) against an in-memory `Job`
   (`ItemJob`), `batch_concurrency` items at a time, through the same step context (and so
   the same engine ladder, SSRF guard, politeness and proxies) a job's step gets. This
   part writes nothing; what each item came to (its transitions and output, or why it
   must leave the chunk) stays in memory.
2. records them in ONE transaction, set-based: every item's row locked in one
   statement, their transitions and audit events (the same changes a job workflow
   writes, planned by `plan_changes`, so the job's row, events, outbox rows and hence
   webhooks and usage read the same) in one UPDATE and one INSERT per
   table, the portal breaker's successes; then enqueues the job workflow of each item
   that leaves. The step's checkpoint is its counts only, not the fetched pages.

Exactly once: an item is recorded only while it is still in its adapter's initial state
(a recorded item is terminal) and has not left its chunk (an item that leaves gets the
note `left_chunk` in the same write as its "left chunk" event: it belongs to its own
workflow from then on, whatever state it is in), under the job row's lock. So a re-run of
the step (a retry after a database error, a crash between its commit and its checkpoint)
fetches again the items still the chunk's (an idempotent GET) and writes nothing twice.
A recovered chunk replays every step that checkpointed (its step ids are drawn in a fixed
order up front) and runs the rest: at most `PIPELINE` sub-chunks are fetched again.

Older code ran each sub-chunk as two steps, `fetch:N` (whose checkpoint held every item's
output, the pages' HTML among it) then `record:N`. Its chunks are workflows of the name
`CHUNK_WORKFLOW_V1`, which stays registered with that layout (`chunk_workflow_v1`), so a
chunk begun by older code and recovered by this code replays its checkpoints at the ids
and names they were written under. Code after it ran one step per sub-chunk of a fixed
`SUB_CHUNK_V2` (50) items, its size in no argument: those chunks are `CHUNK_WORKFLOW_V2`
(`chunk_workflow_v2`), recovered in sub-chunks of 50 whatever `SUB_CHUNK` is now (a
checkpoint `subchunk:0` of 50 items replayed over a part of 100 would leave 50 items
unrun). New chunks are `CHUNK_WORKFLOW`, whose size is its fourth argument.

An item leaves its chunk, and continues as its own durable job (`job_workflow`, from the
state it is in, its history intact plus one control event saying why it left), when its
run needs anything a chunk does not do: a step that failed (the job's own retry policy,
backoff, escalation to a person or a captcha operator take over), a wait (`sleep`,
`wait_for_input`), children, an alert; or when the job or its portal is paused, cooling
down or behind an open breaker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from dbos import DBOS, StepOptions
from pydantic import BaseModel

from portwright.engines.http import CookieRow, translate_exception
from portwright.orchestrator._queue_probe import mark_enqueued
from portwright.orchestrator._queue_wake import wake_local
from portwright.orchestrator._step_context import StepContextImpl
from portwright.orchestrator._tx import apply_batch, batch_rows, outbox_rows, plan_changes
from portwright.orchestrator._workflow import current_runtime
from portwright.sdk import Adapter, JobError, Logger, SelectorMap

if TYPE_CHECKING:
    from portwright.orchestrator._runtime import Runtime
    from portwright.settings import Settings
    from portwright.store import JobRecord

__all__ = [
    "CHUNK_MAX",
    "CHUNK_NOTE",
    "CHUNK_WORKFLOW",
    "CHUNK_WORKFLOWS",
    "CHUNK_WORKFLOW_V1",
    "CHUNK_WORKFLOW_V2",
    "LEFT_NOTE",
    "PIPELINE",
    "SUB_CHUNK",
    "SUB_CHUNK_V2",
    "ChunkRunner",
    "Leave",
    "balance_chunk_queues",
    "chunk_polling_interval",
    "chunk_queue_name",
    "chunk_share",
    "chunk_size",
    "chunk_workflow",
    "enqueue_chunks",
    "plan_chunks",
]

CHUNK_WORKFLOW = "portwright.chunk.v3"  # one step per sub-chunk, its size an argument
CHUNK_WORKFLOW_V2 = "portwright.chunk.v2"  # older code's: one step per sub-chunk of 50
CHUNK_WORKFLOW_V1 = "portwright.chunk"  # older code's: two steps per sub-chunk of 50
CHUNK_WORKFLOWS = (CHUNK_WORKFLOW, CHUNK_WORKFLOW_V2, CHUNK_WORKFLOW_V1)
CHUNK_NOTE = "chunk"  # the job row's note naming its chunk workflow
LEFT_NOTE = "left_chunk"  # the job row's note naming the chunk it left (its own now)
# items fetched, then recorded in one transaction, per checkpoint: 100, not 50 (half the
# reads, record transactions, statement plans, checkpoints and thread hops per item; a
# crash re-fetches at most PIPELINE * SUB_CHUNK idempotent GETs): benchmarks/README.md,
# "Sub-chunks of 100"
SUB_CHUNK = 100
SUB_CHUNK_V2 = 50  # the size `CHUNK_WORKFLOW_V2` and `CHUNK_WORKFLOW_V1` chunks walk
PIPELINE = 2  # sub-chunks of a chunk in flight at once (a fetch overlaps the last record)
CHUNK_MAX = 1000  # items per chunk at most when a batch is split into fewer, larger chunks

T = TypeVar("T")
log = structlog.get_logger("portwright.chunk")


def chunk_queue_name(portal: str) -> str:
    return f"chunks-{portal}"


CHUNK_POLLING_DIVISOR = 4
CHUNK_POLLING_FLOOR_S = 0.02


def chunk_polling_interval(settings: Settings) -> float:
    """How often workers look for a portal's next chunk: a quarter of the job queues'
    `queue_polling_interval_s`, at least 20 ms. A batch's chunks used to wait from their
    enqueue to a worker's next poll, each worker's own (with two workers the batch waited
    for the later of two), and a chunk's slot stood idle from its chunk's end to the next
    poll; both now wake the poll (`_queue_wake`), and this pace is what a lost wake-up
    waits for. Polling
    the one chunk queue of each batchable portal this often costs an idle worker nothing
    measurable (its CPU over 20 idle seconds: 1.52 s at the job queues' pace, 1.49 s at
    this one); it once switched between the two paces as batches came and went, which left
    a batch's first chunks waiting for the slower poll."""
    interval = settings.queue_polling_interval_s
    return min(interval, max(CHUNK_POLLING_FLOOR_S, interval / CHUNK_POLLING_DIVISOR))


def chunk_share(slots: int, workers: int, cap: int) -> int:
    """Chunks of a portal one worker runs at once: its share of the portal's chunk slots
    over the live workers, rounded up (at least 1, at most `cap`, its worker concurrency).
    DBOS hands a queue's free slots to whichever worker polls first, so with the whole
    count as every worker's limit one worker of two took both of a batch's chunks while
    the other stood idle."""
    return max(1, min(cap, -(-slots // max(1, workers))))


def live_workers(runtime: Runtime) -> int:
    """The workers sharing the chunks: those alive by their heartbeat, this process
    counted if it runs workflows (before its first heartbeat too)."""
    since = time.time() - runtime.settings.dead_worker_after_s
    others = runtime.store.workers.live(since, exclude=runtime.executor_id)
    return others + (1 if runtime.run_workers else 0)


def balance_chunk_queues(runtime: Runtime, workers: int | None = None) -> dict[str, int]:
    """Set each batchable portal's chunk queue's worker concurrency (a field of its DBOS
    queue row, which every worker reads on each poll) to `chunk_share` of the live workers;
    written only where it differs. Every worker's janitor calls it each round, so a worker
    joining or dying is accounted for within a heartbeat or two (a process registering the
    queue at start sets it too). The queue's polling interval is put back to
    `chunk_polling_interval` too if something else (older code) changed it.
    A failure leaves the share as it was (the chunks still run, on fewer workers). Returns
    {portal: share}. `workers`: the live workers, if the caller counted them already."""
    workers = live_workers(runtime) if workers is None else workers
    cap = runtime.settings.worker_concurrency
    pace = chunk_polling_interval(runtime.settings)
    shares: dict[str, int] = {}
    for portal, slots in runtime.chunk_slots.items():
        queue = runtime.registered_queue(chunk_queue_name(portal))
        if queue is None:
            continue
        share = shares[portal] = chunk_share(slots, workers, cap)
        try:
            if queue.worker_concurrency != share:
                queue.set_worker_concurrency(share)
            if queue.polling_interval_sec != pace:
                queue.set_polling_interval_sec(pace)
        except Exception:  # noqa: BLE001 - a share, not a result: logged, and the chunks run
            log.warning("could not set the chunk queue's worker share", portal=portal)
    return shares


def _infra(name: str) -> StepOptions:
    return {
        "name": name,
        "retries_allowed": True,
        "max_attempts": 6,
        "interval_seconds": 0.5,
        "backoff_rate": 2.0,
    }


@dataclass(frozen=True, slots=True)
class PlannedChunk:
    chunk_id: str
    adapter: str
    portal: str
    job_ids: list[str]


def plan_chunks(
    adapter_cls: type[Adapter],  # type: ignore[type-arg]
    models: Sequence[BaseModel],
    job_ids: Sequence[str],
) -> dict[str, str]:
    """Which chunk each batchable item joins ({job id: chunk id}; items absent run as
    their own jobs). Chunks take the items in the order given, `chunk_size` at a time; a
    chunk's id derives from its first item's."""
    if not adapter_cls.batchable:
        return {}
    instance = adapter_cls()
    chosen = [
        job_id for job_id, model in zip(job_ids, models, strict=True) if instance.batch_item(model)
    ]
    size = chunk_size(adapter_cls, len(chosen))
    plan: dict[str, str] = {}
    for start in range(0, len(chosen), size):
        group = chosen[start : start + size]
        for job_id in group:
            plan[job_id] = f"chunk_{group[0]}"
    return plan


def chunk_size(adapter_cls: type[Adapter], items: int) -> int:  # type: ignore[type-arg]
    """Items per chunk for a batch of `items`: `batch_size`, or more (at most `CHUNK_MAX`)
    so that the batch makes no more chunks than its portal runs at once. Each chunk's end
    left its queue slot idle until the queue's next poll found the next chunk (measured
    80-140 ms a time, with the fetches stopped meanwhile: a quarter of a 1,000-URL batch's
    time in chunks of 100; a chunk's end now wakes the poll, `_wake_at_end`, but the next
    chunk still starts its fetches from nothing); a batch of as many chunks as slots
    crosses no such gap. The
    queue is first in, first out, so smaller chunks would not let another batch in sooner;
    a crash still re-fetches at most `PIPELINE` sub-chunks, whatever the chunk's size."""
    least = max(1, adapter_cls.batch_size)
    slots = max(1, adapter_cls.max_concurrency // max(1, adapter_cls.batch_concurrency))
    return max(least, min(CHUNK_MAX, -(-items // slots)))


def group_chunks(records: Sequence[JobRecord]) -> tuple[list[PlannedChunk], list[JobRecord]]:
    """Accepted jobs split into their chunks (by their note) and the ones that run alone."""
    chunks: dict[str, PlannedChunk] = {}
    alone: list[JobRecord] = []
    for job in records:
        chunk_id = (job.notes or {}).get(CHUNK_NOTE)
        if not isinstance(chunk_id, str):
            alone.append(job)
            continue
        pinned = f"{job.adapter}@{job.adapter_version}"  # a chunk runs its items' version
        chunk = chunks.setdefault(chunk_id, PlannedChunk(chunk_id, pinned, job.portal, []))
        chunk.job_ids.append(job.id)
    return list(chunks.values()), alone


def enqueue_chunks(runtime: Runtime, chunks: Sequence[PlannedChunk]) -> int:
    """Enqueue the chunk workflows in one DBOS transaction (as `Runtime.enqueue_many` does
    for jobs; existing ones are skipped); how many were new."""
    from dbos._core import prepare_enqueued_workflow
    from dbos._dbos import _get_dbos_instance

    if not chunks:
        return 0
    dbos = _get_dbos_instance()
    statuses = [
        prepare_enqueued_workflow(
            dbos,
            chunk_workflow,
            _workflow_args(chunk),
            {},
            queue_name=chunk_queue_name(chunk.portal),
            workflow_id=chunk.chunk_id,
        )
        for chunk in chunks
    ]
    created = len(dbos._sys_db.init_workflows(statuses))
    mark_enqueued({chunk_queue_name(chunk.portal) for chunk in chunks})
    return created


def _workflow_args(chunk: PlannedChunk) -> tuple[Any, ...]:
    """A new chunk workflow's arguments, as `chunk_workflow` takes them."""
    return (chunk.chunk_id, chunk.adapter, list(chunk.job_ids), SUB_CHUNK)


@DBOS.workflow(name=CHUNK_WORKFLOW)
async def chunk_workflow(
    chunk_id: str, adapter: str, job_ids: list[str], sub_chunk: int
) -> dict[str, int]:
    """Run a chunk's items, `sub_chunk` at a time: one step each that fetches and records,
    `PIPELINE` sub-chunks at once (see `_pipeline`). The size is an argument, kept with
    the workflow's inputs, so a recovered chunk walks the parts it began with."""
    return await _run_chunk(chunk_id, adapter, job_ids, _pipeline, sub_chunk)


@DBOS.workflow(name=CHUNK_WORKFLOW_V2)
async def chunk_workflow_v2(chunk_id: str, adapter: str, job_ids: list[str]) -> dict[str, int]:
    """Older code's chunk workflow, kept for the chunks it began: as `chunk_workflow`, in
    sub-chunks of `SUB_CHUNK_V2`, the size it had. Nothing enqueues it any more."""
    return await _run_chunk(chunk_id, adapter, job_ids, _pipeline, SUB_CHUNK_V2)


@DBOS.workflow(name=CHUNK_WORKFLOW_V1)
async def chunk_workflow_v1(chunk_id: str, adapter: str, job_ids: list[str]) -> dict[str, int]:
    """Older code's chunk workflow, kept for the chunks it began: a fetch step, then a
    record step, per sub-chunk (see `_pipeline_v1`). Nothing enqueues it any more; DBOS
    recovers a pending one by this name, and its checkpoints replay at their ids."""
    return await _run_chunk(chunk_id, adapter, job_ids, _pipeline_v1, SUB_CHUNK_V2)


Pipeline = Callable[["ChunkRunner", list[list[str]]], Awaitable[list[dict[str, int]]]]


async def _run_chunk(
    chunk_id: str, adapter: str, job_ids: list[str], pipeline: Pipeline, sub_chunk: int
) -> dict[str, int]:
    runtime = current_runtime()
    name, _, version = adapter.partition("@")  # "name@version": the version its items pin
    if name not in runtime.registry or (version and not runtime.registry.has(name, version)):
        await DBOS.run_step_async(_infra("release"), _release_all, job_ids)  # each item's own
        return {"recorded": 0, "left": len(job_ids), "skipped": 0}  # workflow fails it visibly
    adapter_cls = runtime.registry.get(name, version or None)
    _wake_at_end(chunk_queue_name(adapter_cls.portal_name()))
    runner = ChunkRunner(runtime, adapter_cls, chunk_id)
    size = max(1, sub_chunk)
    parts = [job_ids[start : start + size] for start in range(0, len(job_ids), size)]
    totals = {"recorded": 0, "left": 0, "skipped": 0}
    for counts in await pipeline(runner, parts):
        for key in totals:
            totals[key] += counts.get(key, 0)
    # (older code ran one more step here, "pace"; a chunk it began and this code recovers
    # leaves that checkpoint unread, which replay allows: no step of ours takes its id)
    return totals


def _wake_at_end(queue: str) -> None:
    """When this chunk's workflow task is done (DBOS has recorded its outcome and freed its
    slot: the task runs DBOS's `_execute_workflow_async` to its end), wake this worker's
    poll of its queue, which takes the next chunk waiting there, if any (the probe says).
    Its slot stood idle until the poll's next turn otherwise: 31-63 ms a chunk. Should
    DBOS run the workflow's body in a task of its own, the wake comes before the slot is
    free and that poll finds no room: the next poll, at DBOS's pace, takes the chunk."""
    task = asyncio.current_task()
    if task is not None:
        task.add_done_callback(lambda _: wake_local(queue))


async def _pipeline(runner: ChunkRunner, parts: list[list[str]]) -> list[dict[str, int]]:
    """Each sub-chunk's one step, `subchunk:N` (`ChunkRunner.run`: fetch, then record), up
    to `PIPELINE` sub-chunks at once: the fetch of sub-chunk N+1 runs while sub-chunk N
    finishes its last items and records them (the runner's one semaphore bounds the
    fetches in flight across sub-chunks).

    Replay stays deterministic: every step id is drawn up front, in sub-chunk order, so a
    recovered chunk finds each step's checkpoint at the same id whatever order they
    finished in. The steps of different sub-chunks touch different items, so exactly-once
    holds as in a sequential walk (module docstring)."""
    steps = [DBOS.reserve_step() for _ in parts]
    window = asyncio.Semaphore(PIPELINE)

    async def run(index: int, part: list[str]) -> dict[str, int]:
        async with window:
            counts: dict[str, int] = await steps[index].run_async(
                _infra(f"subchunk:{index}"), runner.run, part
            )
        return counts

    return await _gather([run(index, part) for index, part in enumerate(parts)])


async def _pipeline_v1(runner: ChunkRunner, parts: list[list[str]]) -> list[dict[str, int]]:
    """Older code's layout (`chunk_workflow_v1`): each sub-chunk's `fetch:N` then
    `record:N`, their ids drawn up front in the order fetch:0, record:0, fetch:1, …"""
    steps = [(DBOS.reserve_step(), DBOS.reserve_step()) for _ in parts]
    window = asyncio.Semaphore(PIPELINE)

    async def run(index: int, part: list[str]) -> dict[str, int]:
        fetch_step, record_step = steps[index]
        async with window:
            fetched: list[dict[str, Any]] = await fetch_step.run_async(
                _infra(f"fetch:{index}"), runner.fetch, part
            )
            counts: dict[str, int] = await record_step.run_async(
                _infra(f"record:{index}"), runner.record, fetched
            )
        return counts

    return await _gather([run(index, part) for index, part in enumerate(parts)])


async def _gather(runs: list[Awaitable[dict[str, int]]]) -> list[dict[str, int]]:
    tasks = [asyncio.ensure_future(run) for run in runs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:  # a step that failed for good fails the chunk: stop the rest
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _release_all(job_ids: list[str]) -> int:
    runtime = current_runtime()
    jobs = await asyncio.to_thread(runtime.store.jobs.get_many, job_ids)
    return await asyncio.to_thread(runtime.enqueue_many, jobs)


class Leave(Exception):  # noqa: N818 - a signal, not an error: the item leaves its chunk
    """The item's run needs something a chunk does not do: it continues as its own job."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ItemJob:
    """`Job` for one item inside a chunk: transitions are collected (the record step writes
    them), a step runs once; anything durable (a failure to retry, a wait, children, an
    alert) raises `Leave`."""

    def __init__(self, runner: ChunkRunner, job: JobRecord, data: BaseModel | None = None) -> None:
        self._runner = runner
        self._job = job
        cls = runner.adapter_cls
        self._machine = cls.machine
        if data is None:  # not validated already by the fetch step's read (`Runtime.site_of`)
            opened = runner.runtime.inputs.open(job.tenant_id, cls.input_model, job.input)
            data = cls.input_model.model_validate(opened)
        self._input = data
        self._state = job.state
        self._cookies: list[CookieRow] = []
        self.changes: list[dict[str, Any]] = []
        self._logger: Logger | None = None  # bound on first use (most items never log)

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def tenant_id(self) -> str:
        return self._job.tenant_id

    @property
    def input(self) -> Any:
        return self._input

    @property
    def state(self) -> str:
        return self._state

    @property
    def log(self) -> Logger:
        if self._logger is None:
            job, runner = self._job, self._runner
            self._logger = structlog.get_logger("portwright.job").bind(
                job_id=job.id,
                chunk_id=runner.chunk_id,
                tenant_id=job.tenant_id,
                adapter=runner.adapter_cls.name,
            )
        return self._logger

    async def transition(self, to_state: str, reason: str = "", **meta: Any) -> None:
        if self._machine.is_terminal(self._state) or not self._machine.allows(
            self._state, to_state
        ):
            raise Leave(f"transition {self._state} -> {to_state} is for its own workflow")
        self.changes.append(
            {
                "to_state": to_state,
                "actor": f"adapter:{self._runner.adapter_cls.name}",
                "reason": reason,
                "meta": meta,
                "updates": None,
                "kind": "transition",
            }
        )
        self._state = to_state

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        rt = self._runner.runtime
        selectors = self._runner.selectors
        if selectors is None:
            selectors = await asyncio.to_thread(rt.selectors_for, self._runner.adapter_cls)
        sc = StepContextImpl(
            rt, self._job, step=name, attempt=1, cookies=self._cookies, selectors=selectors
        )
        try:
            value = await fn(sc, *args, **kw)
        except Exception as exc:  # noqa: BLE001 - classified; the job's own workflow retries
            error = exc if isinstance(exc, JobError) else translate_exception(exc)
            error = sc.refused or error
            kind = error.error_class if error is not None else "unexpected"
            message = error.message if error is not None else repr(exc)
            raise Leave(sc.mask(f"{name} failed ({kind}): {message}")) from None
        finally:
            try:
                await sc.aclose()
            except Exception:  # logged; the step's result is what counts
                self.log.exception("could not close the step's context", step=name)
        self._cookies = sc.cookies()
        return value

    async def wait_for_input(
        self, name: str, timeout_s: float, *, state: str | None = None, reason: str = ""
    ) -> Any:
        raise Leave(f"waits for input {name}")

    async def ask_customer(
        self,
        name: str,
        question: str,
        timeout_s: float,
        *,
        state: str | None = None,
        kind: str = "text",
        fallback: str = "raise",
    ) -> Any:
        raise Leave(f"asks the customer for {name}")

    async def sleep(self, seconds: float) -> None:
        raise Leave(f"sleeps {seconds:g}s")

    async def spawn(
        self, adapter: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[str]:
        raise Leave("spawns children")

    async def progress(self) -> Mapping[str, int]:
        raise Leave("follows children")

    async def alert(self, kind: str, reason: str, **details: Any) -> None:
        raise Leave(f"raises an alert ({kind})")

    async def now(self) -> float:
        return time.time()


class ChunkRunner:
    """A sub-chunk's step (`run`: `fetch`, then `record`), for one chunk workflow."""

    def __init__(self, runtime: Runtime, adapter_cls: type[Adapter], chunk_id: str) -> None:  # type: ignore[type-arg]
        self.runtime = runtime
        self.adapter_cls = adapter_cls
        self.chunk_id = chunk_id
        self.selectors: SelectorMap | None = None  # read once per sub-chunk's fetch
        # the items fetched at once, across the chunk's sub-chunks in flight
        self.limit = asyncio.Semaphore(max(1, adapter_cls.batch_concurrency))

    async def run(self, job_ids: list[str]) -> dict[str, int]:
        """A sub-chunk's one step: fetch its items, record what they came to, return the
        counts (all its checkpoint holds). Safe to run again: see the module docstring."""
        return await self.record(await self.fetch(job_ids))

    # -- fetch: no writes ----------------------------------------------------------------

    async def fetch(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """Run each item that is still the chunk's (in its initial state, not finished) and
        say what became of it: {id, ok, changes, output} or {id, leave: why}."""
        rt = self.runtime
        portal = self.adapter_cls.portal_name()
        inputs: dict[str, Any] = {}  # {job id: (adapter class, input)}, validated by the read
        jobs, gate, held, self.selectors = await asyncio.to_thread(
            self._read, job_ids, portal, inputs
        )
        initial = self.adapter_cls.machine.initial
        limit = self.limit

        async def one(job: JobRecord) -> dict[str, Any]:
            if job.state != initial or rt.machine_of(job.adapter).is_terminal(job.state):
                return {"id": job.id, "skip": True}  # finished, or its own workflow has it
            if (job.notes or {}).get(LEFT_NOTE):  # it left (a re-run of this step): its own
                return {"id": job.id, "left": True}  # workflow's; the record re-enqueues it
            if gate is not None or job.id in held:
                return {"id": job.id, "seq": job.seq, "leave": gate or held[job.id]}
            if job.paused or job.cancel_requested:
                return {"id": job.id, "seq": job.seq, "leave": "paused"}
            cls, data = inputs.pop(job.id, (None, None))
            async with limit:
                return await self._run_item(job, data if cls is self.adapter_cls else None)

        return list(await asyncio.gather(*(one(job) for job in jobs)))

    def _read(
        self, job_ids: list[str], portal: str, inputs: dict[str, Any] | None = None
    ) -> tuple[list[JobRecord], str | None, dict[str, str], SelectorMap]:
        """What the fetch step reads, in one connection: the items; why none may run now
        (the portal paused, cooling down or its breaker not closed: each item's own
        workflow waits that out), or None; why some must wait for their target site
        ({job id: why}, `Runtime.sites_holding`, which validates each item's input on the
        way: kept in `inputs` for its run); the adapter's selectors."""
        rt = self.runtime
        store = rt.store
        with store.engine.connect() as conn:
            jobs = store.jobs.read_many(conn, job_ids)
            record = store.portals.read(conn, portal)
            breaker = store.portals.breaker_state(conn, f"portal:{portal}")
            held = rt.sites_holding(jobs, conn, inputs=inputs)  # per target site
        selectors = rt.selectors_for(self.adapter_cls)
        now = time.time()
        if record.paused:
            return jobs, "portal paused", held, selectors
        if record.cooldown_until is not None and record.cooldown_until > now:
            return jobs, f"portal cooling down: {record.cooldown_reason}", held, selectors
        if breaker != "closed":
            return jobs, f"portal circuit {breaker}", held, selectors
        return jobs, None, held, selectors

    async def _run_item(self, job: JobRecord, data: BaseModel | None = None) -> dict[str, Any]:
        try:
            item = ItemJob(self, job, data)
            output = await self.adapter_cls().run(item)
        except Leave as exc:
            return {"id": job.id, "seq": job.seq, "leave": exc.reason}
        except Exception as exc:  # noqa: BLE001 - its own workflow fails it with the reason
            return {"id": job.id, "seq": job.seq, "leave": f"run failed: {type(exc).__name__}"}
        return {
            "id": job.id,
            "seq": job.seq,
            "ok": True,
            "changes": item.changes,
            "output": dict(output or {}),
        }

    # -- record: one transaction ---------------------------------------------------------

    async def record(self, fetched: list[dict[str, Any]]) -> dict[str, int]:
        """Write every fetched item's result in one transaction, then enqueue the job
        workflow of each item that leaves. Safe to run again (see the module docstring)."""
        return await asyncio.to_thread(self._record, fetched)

    def _record(self, fetched: list[dict[str, Any]]) -> dict[str, int]:
        rt = self.runtime
        store = rt.store
        machine = self.adapter_cls.machine
        portal = self.adapter_cls.portal_name()
        breaker = f"portal:{portal}"
        counts = {"recorded": 0, "left": 0, "skipped": 0}
        leaving: list[str] = []
        again: list[str] = []  # left already: their workflows enqueued again (idempotent)
        writes: list[tuple[JobRecord, list[dict[str, Any]], dict[str, Any]]] = []
        outbox: list[dict[str, Any]] = []
        wanted = [str(item["id"]) for item in fetched if not item.get("skip")]
        counts["skipped"] = len(fetched) - len(wanted)
        with store.engine.begin() as conn:
            breaker_state = store.portals.breaker_state(conn, breaker)
            locked = store.jobs.lock_many(conn, wanted)  # one statement, in id order
            for item in sorted(fetched, key=lambda i: str(i["id"])):
                job = locked.get(str(item["id"]))
                if job is None:
                    continue  # skipped at the fetch
                if job.state != machine.initial or machine.is_terminal(job.state):
                    counts["skipped"] += 1  # recorded already, or its own workflow has it
                    continue
                if (job.notes or {}).get(LEFT_NOTE):  # left at an earlier run of this step
                    again.append(job.id)  # (its enqueue may have failed after the commit)
                    counts["skipped"] += 1
                    continue
                why = item.get("leave") or ("paused" if job.paused else None)
                if why is None:
                    changes = [*item["changes"], self._success(item["output"])]
                    events, values, illegal = plan_changes(job, machine, changes)
                    if illegal is None:
                        writes.append((job, events, values))
                        outbox += outbox_rows(job, events, values)
                        counts["recorded"] += 1
                        continue
                    why = f"illegal transition {illegal['from']} -> {illegal['to']}"
                note = {
                    "to_state": job.state,
                    "actor": "engine",
                    "reason": f"left chunk {self.chunk_id}: {why}",
                    "meta": {"chunk": self.chunk_id},
                    # the row notes it: a re-run of this step fetches it again (a retry
                    # after this commit) and must see that it is no longer the chunk's
                    "updates": {"notes": {**(job.notes or {}), LEFT_NOTE: self.chunk_id}},
                    "kind": "control",
                }
                # `base_seq`: a re-run (after a commit its checkpoint missed) finds the note
                # among the events since the fetch and writes nothing again
                apply_batch(
                    conn, store, rt.machine_of, job.id, [note], base_seq=item["seq"], job=job
                )
                leaving.append(job.id)
                counts["left"] += 1
            # the recorded items: one UPDATE and one INSERT per table (`store._bulk`)
            store.jobs.write_events_many(conn, writes)
            store.outbox.add_many(conn, outbox + batch_rows(conn, outbox))
            if writes and breaker_state == "closed":
                store.portals.add_outcomes(conn, breaker, [True] * len(writes))
        if writes and breaker_state != "closed":
            for _ in writes:
                rt.record_portal_outcome(portal, ok=True)
        if leaving or again:
            rt.enqueue_many(store.jobs.get_many(leaving + again))  # existing ones skipped
        if leaving:
            log.info("items left their chunk", chunk_id=self.chunk_id, jobs=leaving)
        return counts

    def _success(self, output: dict[str, Any]) -> dict[str, Any]:
        """The job's end, as the job driver writes it after `run` returned."""
        return {
            "to_state": self.adapter_cls.machine.success,
            "actor": "engine",
            "reason": "completed",
            "meta": {},
            "updates": {"output": output},
            "kind": "transition",
        }
