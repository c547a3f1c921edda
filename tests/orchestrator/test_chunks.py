"""Batched durable execution (issue 14 part 2): a batch of a batchable adapter runs as chunk
workflows, each item still a job of its own that every API reads as before; results are
recorded exactly once across a SIGKILLed worker and injected database errors; an item
that needs a retry, a wait or a failure's reason leaves its chunk and ends as its own job.

All against the real sandbox `scrape-static` site, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from pydantic import BaseModel, SecretStr

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.gateway import UrlGuard, create_app, issue_key
from portwright.orchestrator import JobService, Runtime
from portwright.orchestrator._chunks import (
    CHUNK_NOTE,
    SUB_CHUNK,
    ChunkRunner,
    balance_chunk_queues,
    chunk_polling_interval,
    chunk_queue_name,
)
from portwright.sandbox import SandboxWorld
from portwright.sandbox.scrape import specs as scrape_specs
from portwright.sdk import Adapter, Job, linear_machine
from portwright.settings import Settings
from portwright.testing import wait_until_sync
from tests.conftest import RuntimeFactory
from tests.gateway._support import ServerThread
from tests.support import ROOT, Worker

ENDED = ("succeeded", "failed", "cancelled")


def _world(**options: Any) -> SandboxWorld:
    specs = [
        dataclasses.replace(s, options={**s.options, "rate_per_s": 0, **options})
        for s in scrape_specs()
        if s.name == "scrape-static"
    ]
    return SandboxWorld(specs, seed=14)


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with _world() as started:
        yield started


def _settings(settings: Settings, world: SandboxWorld) -> Settings:
    return settings.model_copy(
        update={
            "master_key": SecretStr("test-master-key-" + "x" * 32),
            "url_allowlist": [world.url("scrape-static").removeprefix("http://")],
            "rate_limit_default": "100000/minute",
            "rate_limit_write": "100000/minute",
            "api_key_cache_s": 0.0,
            "queue_polling_interval_s": 0.05,
        }
    )


def _registry(settings: Settings) -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(ScrapeAdapter.with_guard(UrlGuard.from_allowlist(settings.url_allowlist)))
    return registry


def _urls(world: SandboxWorld, count: int, offset: int = 0) -> list[str]:
    site = world.url("scrape-static")
    return [f"{site}/product/{offset + i + 1}" for i in range(count)]


def _wait_ended(store: Any, ids: list[str], timeout_s: float) -> dict[str, str]:
    statuses: dict[str, str] = {}

    def ended() -> bool:
        statuses.update({job.id: job.status for job in store.jobs.get_many(ids)})
        return all(statuses.get(i) in ENDED for i in ids)

    with contextlib.suppress(AssertionError):
        wait_until_sync(ended, timeout=timeout_s, every=0.2)
    return statuses


def _workflow_ids(ids: list[str]) -> set[str]:
    from dbos import DBOS

    found = DBOS.list_workflows(workflow_ids=ids, load_input=False, load_output=False)
    return {status.workflow_id for status in found}


def _shape(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """An event list less what differs between any two jobs (times)."""
    return [
        (e["seq"], e["kind"], e["actor"], e["from_state"], e["to_state"], e["reason"], e["meta"])
        for e in events
    ]


def _outbox(store: Any, job_ids: list[str]) -> Counter[tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT subject, topic FROM outbox WHERE subject IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": job_ids},
        ).all()
    return Counter((row.subject, row.topic) for row in rows)


def _assert_recorded_once(store: Any, ids: list[str]) -> None:
    """Every job succeeded with exactly one recorded result: one terminal event, one
    `job.succeeded` outbox row, an event history without gaps that replays to its row."""
    jobs = store.jobs.get_many(ids)
    assert len(jobs) == len(ids), "a job was lost"
    assert Counter(j.status for j in jobs) == {"succeeded": len(ids)}, Counter(
        (j.status, j.reason) for j in jobs
    )
    outbox = _outbox(store, ids)
    for job in jobs:
        events = store.jobs.events(job.id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), job.id
        finals = [e for e in events if e.to_state == job.state and e.kind == "transition"]
        assert len(finals) == 1, f"{job.id} recorded its result {len(finals)} times"
        assert outbox[(job.id, "job.succeeded")] == 1, job.id
        assert job.output is not None
        assert job.output["status"] == 200


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_batch_runs_as_chunks_and_each_item_reads_like_a_job(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """A 120-item batch runs as chunk workflows (no workflow per item), every item
    succeeds, and through the API each reads as an unbatched `/v1/scrape` job of the same
    URL does: the job, its events, its evidence, its outbox (webhook) rows, usage."""
    settings = _settings(settings, world)
    runtime: Runtime = make_runtime(_registry(settings), settings=settings)
    service = JobService(runtime)
    key = issue_key(runtime.store, tenant="acme", plan="business").key
    server = ServerThread(create_app(service, settings)).start()
    urls = _urls(world, 120)
    try:
        with httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {key}"}, timeout=120
        ) as api:
            single = api.post("/v1/scrape", json={"url": urls[0]})
            assert single.status_code == 202, single.text
            alone_id = single.json()["id"]
            reply = api.post("/v1/batch", json={"items": [{"url": u} for u in urls]})
            assert reply.status_code == 202, reply.text
            ids = [j["id"] for j in reply.json()["jobs"]]
            statuses = _wait_ended(runtime.store, [alone_id, *ids], timeout_s=300)
            assert Counter(statuses.values()) == {"succeeded": len(ids) + 1}

            chunks = {(j.notes or {}).get(CHUNK_NOTE) for j in runtime.store.jobs.get_many(ids)}
            assert len(chunks) == 2
            assert None not in chunks
            assert _workflow_ids(sorted(chunks)) == chunks  # str ids, a workflow each
            assert _workflow_ids(ids) == set(), "a chunked item got a workflow of its own"
            assert _workflow_ids([alone_id]) == {alone_id}

            alone = api.get(f"/v1/jobs/{alone_id}").json()
            batched = api.get(f"/v1/jobs/{ids[0]}").json()
            differ = {"id", "created_at", "updated_at", "finished_at", "input"}
            assert {k: v for k, v in batched.items() if k not in differ} == {
                k: v for k, v in alone.items() if k not in differ
            }
            assert batched["input"]["url"] == alone["input"]["url"] == urls[0]
            assert batched["output"]["title"]
            assert batched["output"]["status"] == 200
            alone_events = api.get(f"/v1/jobs/{alone_id}/events").json()["data"]
            for job_id in ids[:3] + ids[-3:]:
                events = api.get(f"/v1/jobs/{job_id}/events").json()["data"]
                assert _shape(events) == _shape(alone_events)
                evidence = api.get(f"/v1/jobs/{job_id}/evidence")
                assert evidence.status_code == 200
                assert evidence.json() == api.get(f"/v1/jobs/{alone_id}/evidence").json()
            outbox = _outbox(runtime.store, [alone_id, *ids])
            topics = Counter(topic for (_job, topic) in outbox.elements())
            per_job = {t: n / (len(ids) + 1) for t, n in topics.items()}
            assert per_job == dict.fromkeys(per_job, 1.0), per_job  # the same rows per job
            usage = api.get("/v1/usage").json()
            assert usage["jobs"] == len(ids) + 1
            assert usage["by_tier"].get("pending") is None, usage
            assert usage["by_tier"]["http"]["requests"] == len(ids) + 1
            listed = api.get("/v1/jobs", params={"limit": 200}).json()["data"]
            assert {j["id"] for j in listed} >= set(ids)
            _console_reads_the_same(runtime, server.url, alone_id, ids[0])
        _assert_recorded_once(runtime.store, ids)
        for job_id in ids[:5]:
            assert service.replay(job_id).matches
    finally:
        server.stop()


def _console_reads_the_same(runtime: Runtime, url: str, alone_id: str, batched_id: str) -> None:
    """The console's job page shows a chunked item as it shows an unbatched job: the same
    rows of its history (state changes, actors, reasons), the same state and output."""
    from portwright.console import hash_password
    from tests.console._support import PASSWORD, csrf_in

    email = "viewer-chunks@example.test"
    runtime.store.console.create_operator(
        email=email, password_hash=hash_password(PASSWORD), role="viewer", tenant_id=None
    )
    with httpx.Client(base_url=url, timeout=30) as http:
        token = csrf_in(http.get("/console/login").text)
        done = http.post(
            "/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert done.status_code == 303, done.text
        pages = {}
        for job_id in (alone_id, batched_id):
            page = http.get(f"/console/jobs/{job_id}")
            assert page.status_code == 200, page.text
            pages[job_id] = page.text
    alone = pages[alone_id].replace(alone_id, "JOB")
    batched = pages[batched_id].replace(batched_id, "JOB")
    assert "SUCCEEDED" in batched
    assert "completed" in batched
    import difflib

    # the input differs in one field only: the batch's id (a single scrape has none)
    batch_id = "&#34;batch_id&#34;: "
    batched = _without_times(batched).replace(f"{batch_id}&#34;ID&#34;", f"{batch_id}null")
    diff = list(
        difflib.unified_diff(_without_times(alone).splitlines(), batched.splitlines(), lineterm="")
    )
    assert not diff, "\n".join(diff)


def _without_times(html: str) -> str:
    """A page less what differs between two jobs of the same URL: times, ids, durations."""
    import re

    html = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?", "T", html)
    html = re.sub(r"\b\d+(\.\d+)?\s*(ms|s|seconds?)\b", "D", html)
    html = re.sub(r"(job|bat)_[0-9a-z]+", "ID", html)
    return re.sub(r"\d{9,}(\.\d+)?", "N", html)


def _accept(service: JobService, urls: list[str]) -> list[str]:
    import asyncio

    tenant = service.store.tenants.ensure("acme", plan="business")

    async def submit() -> list[str]:
        records = await service.submit_many(
            tenant_id=tenant.id, adapter="scrape", inputs=[{"url": u} for u in urls]
        )
        await asyncio.gather(*service._enqueueing)  # jobs that run alone enqueued too
        return [r.id for r in records]

    return asyncio.run(submit())


@pytest.mark.timeout(300)
def test_an_item_that_needs_a_retry_or_fails_leaves_its_chunk_and_ends_as_its_own_job(
    make_runtime: RuntimeFactory, settings: Settings
) -> None:
    """The site answers 429 beyond a burst of 5, and one URL is a 404: the items that met a
    429 leave their chunk, wait out the cooldown as their own job workflows and succeed;
    the 404 leaves too and fails with the reason an unbatched job gets. Their histories
    keep every event, the chunk's note of why it left among them."""
    with _world(rate_per_s=4.0, burst=5) as world:
        settings = _settings(settings, world)
        runtime: Runtime = make_runtime(_registry(settings), settings=settings)
        service = JobService(runtime)
        urls = _urls(world, 14)
        missing = f"{world.url('scrape-static')}/product/999999"
        ids = _accept(service, [*urls, missing])
        statuses = _wait_ended(runtime.store, ids, timeout_s=240)
        assert statuses[ids[-1]] == "failed"
        assert Counter(statuses[i] for i in ids[:-1]) == {"succeeded": len(urls)}
        left = []
        for job in runtime.store.jobs.get_many(ids):
            events = runtime.store.jobs.events(job.id)
            notes = [e for e in events if e.reason.startswith("left chunk")]
            assert len(notes) <= 1
            if notes:
                left.append(job.id)
                assert notes[0].seq == 2  # right after its acceptance
                assert notes[0].kind == "control"
        assert ids[-1] in left
        rate_limited = [i for i in left if i != ids[-1]]
        assert rate_limited, "no item met the rate limit: the test proves nothing"
        assert _workflow_ids(left) == set(left)  # each continued as its own workflow
        stayed = sorted(set(ids) - set(left))
        assert stayed
        assert _workflow_ids(stayed) == set()
        for job_id in rate_limited[:3]:
            reasons = [e.reason for e in runtime.store.jobs.events(job_id)]
            assert any("429" in r or "rate" in r.lower() for r in reasons), reasons
        failed = runtime.store.jobs.get(ids[-1])
        assert failed.error_class == "permanent"
        assert failed.reason == f"404 from {missing}"
        _assert_recorded_once(runtime.store, stayed)


@pytest.mark.timeout(300)
def test_a_database_error_while_recording_neither_records_twice_nor_loses_an_item(
    make_runtime: RuntimeFactory,
    settings: Settings,
    world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database error inside a record transaction (its last statement: every item's
    writes roll back) and one after a record transaction committed (before its checkpoint):
    each record step runs again, and every item ends with exactly one recorded result."""
    settings = _settings(settings, world)
    runtime: Runtime = make_runtime(_registry(settings), settings=settings)
    service = JobService(runtime)
    fired = Counter[str]()

    def inside(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO BREAKER_OUTCOMES") and (
            fired["inside"] < 2
        ):
            fired["inside"] += 1
            raise sa.exc.OperationalError(statement, {}, Exception("injected: connection lost"))

    original = ChunkRunner._record

    def after_commit(self: ChunkRunner, fetched: list[dict[str, Any]]) -> dict[str, int]:
        counts = original(self, fetched)
        if fired["after"] < 2 and counts["recorded"]:
            fired["after"] += 1
            raise sa.exc.OperationalError("COMMIT", {}, Exception("injected: lost the reply"))
        return counts

    sa.event.listen(runtime.store.engine, "before_cursor_execute", inside)
    monkeypatch.setattr(ChunkRunner, "_record", after_commit)
    try:
        ids = _accept(service, _urls(world, 2 * SUB_CHUNK + 10, offset=2000))
        statuses = _wait_ended(runtime.store, ids, timeout_s=240)
    finally:
        sa.event.remove(runtime.store.engine, "before_cursor_execute", inside)
    assert fired == {"inside": 2, "after": 2}
    assert Counter(statuses.values()) == {"succeeded": len(ids)}
    _assert_recorded_once(runtime.store, ids)
    assert _workflow_ids(ids) == set(), "an item left its chunk: the errors were not retried"


@pytest.mark.timeout(300)
def test_the_chunk_queue_polls_at_a_quarter_of_the_job_queues_interval(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """The chunk queue polls at a quarter of `queue_polling_interval_s` (at least 20 ms)
    from its registration on, with or without chunks waiting (read back from DBOS's queue
    row, which every worker polls by); a janitor round puts the pace back when something
    else (older code's idle pace) changed it."""
    settings = _settings(settings, world)  # queue_polling_interval_s 0.05
    runtime: Runtime = make_runtime(_registry(settings), settings=settings, run_workers=False)
    queue = runtime.registered_queue(chunk_queue_name("scrape"))
    job_queue = runtime.registered_queue("scrape")
    assert queue is not None
    assert job_queue is not None
    assert chunk_polling_interval(settings) == 0.02
    assert queue.polling_interval_sec == 0.02
    assert job_queue.polling_interval_sec == 0.05
    _accept(JobService(runtime), _urls(world, 120, offset=5000))  # nobody runs them
    assert queue.polling_interval_sec == 0.02
    queue.set_polling_interval_sec(0.05)  # what older code set once no chunk waited
    balance_chunk_queues(runtime)
    assert queue.polling_interval_sec == 0.02


@pytest.mark.timeout(300)
def test_each_worker_takes_its_share_of_a_portals_chunk_slots(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """The scrape portal runs 2 chunks at once. With two workers alive (by their
    heartbeats) each may hold 1 of them, so neither takes both while the other idles; with
    one, it holds both; a worker that stops gives its share back at the next balance (each
    worker's janitor balances every round)."""
    settings = _settings(settings, world)
    runtime: Runtime = make_runtime(_registry(settings), settings=settings, run_workers=False)
    queue = runtime.registered_queue(chunk_queue_name("scrape"))
    assert queue is not None
    assert runtime.chunk_slots["scrape"] == 2
    assert queue.worker_concurrency == 2  # no worker alive: the whole count, as before
    workers = runtime.store.workers
    workers.heartbeat("share-w1")
    workers.heartbeat("share-w2")
    assert balance_chunk_queues(runtime) == {"scrape": 1}  # what each janitor round does
    assert queue.worker_concurrency == 1
    workers.stopped("share-w2")
    assert balance_chunk_queues(runtime) == {"scrape": 2}
    assert queue.worker_concurrency == 2
    with runtime.store.engine.begin() as conn:  # w1 went silent: not alive any more either
        conn.execute(
            sa.text("UPDATE workers SET heartbeat_at = :old WHERE id = 'share-w1'"),
            {"old": time.time() - settings.dead_worker_after_s - 1},
        )
    workers.heartbeat("share-w3")
    workers.heartbeat("share-w4")
    workers.heartbeat("share-w5")
    assert balance_chunk_queues(runtime) == {"scrape": 1}  # 2 slots over 3: at least one each
    assert queue.worker_concurrency == 1


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_worker_processes_each_run_one_of_a_batchs_two_chunks(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld, tmp_path: Path
) -> None:
    """Two worker processes, a batch of two chunks: each worker runs one (before each
    worker's limit was its share, the first to poll took both and the other stood idle)."""
    from dbos import DBOS

    settings = _settings(settings, world)
    runtime: Runtime = make_runtime(_registry(settings), settings=settings, run_workers=False)
    pool = [ChunkWorker(settings, f"chunk-share-{n}", tmp_path / f"w{n}.log") for n in (1, 2)]
    try:
        for worker in pool:
            worker.start()

        def both_alive() -> bool:
            since = time.time() - settings.dead_worker_after_s
            return runtime.store.workers.live(since) == 2

        wait_until_sync(both_alive, timeout=120, every=0.1)
        queue = runtime.registered_queue(chunk_queue_name("scrape"))
        assert queue is not None
        # a janitor round (every 0.3 s here) shares the 2 slots between the two workers
        wait_until_sync(lambda: queue.worker_concurrency == 1, timeout=60, every=0.1)
        ids = _accept(JobService(runtime), _urls(world, 400, offset=3600))
        statuses = _wait_ended(runtime.store, ids, timeout_s=300)
    finally:
        for worker in pool:
            worker.stop()
    assert Counter(statuses.values()) == {"succeeded": len(ids)}
    chunks = sorted(
        {str((j.notes or {}).get(CHUNK_NOTE)) for j in runtime.store.jobs.get_many(ids)}
    )
    assert len(chunks) == 2
    ran = DBOS.list_workflows(workflow_ids=chunks, load_input=False, load_output=False)
    assert sorted(status.executor_id for status in ran) == ["chunk-share-1", "chunk-share-2"]
    _assert_recorded_once(runtime.store, ids)


class CrawlInput(BaseModel):
    urls: list[str]


class CrawlAdapter(Adapter[CrawlInput]):
    """A fan-out parent: one scrape child per URL, then done (the children run on)."""

    name: ClassVar[str] = "crawl"
    input_model = CrawlInput
    machine = linear_machine("crawl", ["SPAWNING"])

    async def run(self, job: Job[CrawlInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("SPAWNING")
        items = [(f"url-{index}", {"url": url}) for index, url in enumerate(job.input.urls)]
        children = await job.spawn("scrape", items)
        return {"children": len(children)}


@pytest.mark.timeout(300)
def test_fan_out_children_of_a_batchable_adapter_run_as_chunks(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """A job spawning 130 scrape children: they run as chunk workflows (two, named after
    their first child), none gets a workflow of its own, each is its parent's item and
    ends with exactly one recorded result."""
    import asyncio

    settings = _settings(settings, world)
    registry = _registry(settings)
    registry.register(CrawlAdapter)
    runtime: Runtime = make_runtime(registry, settings=settings)
    service = JobService(runtime)
    tenant = runtime.store.tenants.ensure("acme", plan="business")
    urls = _urls(world, 130, offset=4000)
    parent = asyncio.run(
        service.submit(tenant_id=tenant.id, adapter="crawl", input={"urls": urls})
    ).id
    assert _wait_ended(runtime.store, [parent], timeout_s=120) == {parent: "succeeded"}
    children = runtime.store.jobs.children(parent)
    ids = [child.id for child in children]
    assert sorted(child.item_key or "" for child in children) == sorted(
        f"url-{index}" for index in range(130)
    )
    statuses = _wait_ended(runtime.store, ids, timeout_s=240)
    assert Counter(statuses.values()) == {"succeeded": 130}
    chunks = {(child.notes or {}).get(CHUNK_NOTE) for child in runtime.store.jobs.get_many(ids)}
    assert chunks == {f"chunk_{parent}.0000", f"chunk_{parent}.0100"}
    assert _workflow_ids(sorted(chunks)) == chunks
    assert _workflow_ids(ids) == set(), "a chunked child got a workflow of its own"
    by_id = {job.id: job for job in runtime.store.jobs.get_many(ids)}
    for child in children:
        assert by_id[child.id].output is not None
        assert by_id[child.id].output["url"] == urls[int((child.item_key or "").split("-")[1])]
    _assert_recorded_once(runtime.store, ids)


class ChunkWorker(Worker):
    """A worker subprocess running the scrape adapter behind the test's allowlist."""

    def __init__(self, settings: Settings, worker_id: str, log: Path) -> None:
        self.env = {
            **os.environ,
            "PORTWRIGHT_DATABASE_URL": settings.app_database_url,
            "PORTWRIGHT_DATA_DIR": str(settings.data_dir),
            "PORTWRIGHT_WORKER_ID": worker_id,
            "PORTWRIGHT_HEARTBEAT_INTERVAL_S": "0.3",
            "PORTWRIGHT_QUEUE_POLLING_INTERVAL_S": "0.05",
            "PORTWRIGHT_LOG_LEVEL": "WARNING",
            "PORTWRIGHT_URL_ALLOWLIST": json.dumps(settings.url_allowlist),
        }
        self.log = log
        self.proc = None

    def start(self) -> None:
        env = self.env
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.orchestrator.chunk_worker"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_worker_killed_mid_batch_records_every_item_exactly_once(
    make_runtime: RuntimeFactory, settings: Settings, tmp_path: Path
) -> None:
    """A worker process running a 600-item batch is SIGKILLed twice mid-run and restarted
    (the same executor: DBOS recovers its chunk workflows); every URL ends with exactly one
    recorded result, none lost."""
    with _world() as world:
        settings = _settings(settings, world)
        runtime: Runtime = make_runtime(_registry(settings), settings=settings, run_workers=False)
        service = JobService(runtime)
        ids = _accept(service, _urls(world, 600, offset=3000))
        worker = ChunkWorker(settings, "chunk-w1", tmp_path / "worker.log")
        kills = []
        try:
            worker.start()
            for threshold in (60, 250):

                def done(at_least: int = threshold) -> bool:
                    counts = runtime.store.jobs.counts_by_status()
                    return counts.get("succeeded", 0) >= at_least

                wait_until_sync(done, timeout=300, every=0.05)
                succeeded = runtime.store.jobs.counts_by_status().get("succeeded", 0)
                worker.kill()
                kills.append(succeeded)
                worker.start()
            statuses = _wait_ended(runtime.store, ids, timeout_s=600)
        finally:
            worker.stop()
        assert all(k < len(ids) for k in kills), f"a kill came after the batch ended: {kills}"
        assert Counter(statuses.values()) == {"succeeded": len(ids)}, Counter(statuses.values())
        _assert_recorded_once(runtime.store, ids)


@pytest.mark.timeout(300)
def test_items_cancelled_or_paused_in_their_chunk_are_steered_like_jobs(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """Before its chunk runs, one item is cancelled and one paused (then resumed before the
    chunk starts: a resume of an item without a workflow of its own is not an error), and
    one stays paused: the cancelled one ends cancelled with no result recorded, the
    resumed one runs in its chunk, the paused one leaves it and waits, paused, as its own
    job until it is resumed; the rest succeed."""
    import asyncio

    settings = _settings(settings, world)
    accepting: Runtime = make_runtime(_registry(settings), settings=settings, run_workers=False)
    service = JobService(accepting)
    ids = _accept(service, _urls(world, 30, offset=4000))
    cancelled, resumed, paused = ids[3], ids[4], ids[5]

    async def steer() -> None:
        await service.cancel(cancelled, actor="test")
        await service.pause(resumed, actor="test")
        await service.resume(resumed, actor="test")
        await service.pause(paused, actor="test")

    asyncio.run(steer())
    accepting.stop()

    runtime: Runtime = make_runtime(_registry(settings), settings=settings)
    service = JobService(runtime)
    rest = [i for i in ids if i != paused]
    statuses = _wait_ended(runtime.store, rest, timeout_s=120)
    assert statuses[cancelled] == "cancelled"
    assert runtime.store.jobs.get(cancelled).output is None
    assert Counter(statuses[i] for i in rest if i != cancelled) == {"succeeded": len(rest) - 1}
    wait_until_sync(lambda: _workflow_ids([paused]) == {paused}, timeout=60)
    held = runtime.store.jobs.get(paused)
    assert held.paused
    assert held.status not in ENDED
    assert any(e.reason.startswith("left chunk") for e in runtime.store.jobs.events(paused))
    asyncio.run(service.resume(paused, actor="test"))
    assert _wait_ended(runtime.store, [paused], timeout_s=120)[paused] == "succeeded"
    assert _workflow_ids([resumed, cancelled]) == set()
    _assert_recorded_once(runtime.store, [i for i in ids if i != cancelled])


def _chunk_steps(chunks: list[str]) -> dict[str, list[tuple[str, Any]]]:
    """Each chunk workflow's checkpointed steps: [(name, output)], in id order."""
    from dbos import DBOS

    return {
        chunk: [
            (step["function_name"], step["output"])
            for step in sorted(DBOS.list_workflow_steps(chunk), key=lambda s: s["function_id"])
        ]
        for chunk in chunks
    }


def _checkpoint_bytes(settings: Settings, chunks: list[str]) -> list[tuple[str, int]]:
    """The checkpoint rows of these workflows as DBOS stored them: (step, bytes)."""
    schema = "dbos." if settings.dbos_database_url.startswith("postgresql") else ""
    engine = sa.create_engine(settings.dbos_database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT function_name, output FROM {schema}operation_outputs "
                    "WHERE workflow_uuid IN :ids"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": chunks},
            ).all()
    finally:
        engine.dispose()
    return [(str(name), len(output or "")) for name, output in rows]


@pytest.mark.timeout(300)
def test_a_sub_chunk_is_one_step_whose_checkpoint_holds_counts_not_pages(
    make_runtime: RuntimeFactory, settings: Settings, world: SandboxWorld
) -> None:
    """Each sub-chunk of a chunk is one checkpointed step (`subchunk:N`, fetch and record
    together), and what it checkpoints is its counts: no item's output, no page's HTML
    (older code checkpointed a `fetch:N` step holding every item's output, ~100-200 KB per
    sub-chunk, before its `record:N`)."""
    settings = _settings(settings, world)
    runtime: Runtime = make_runtime(_registry(settings), settings=settings)
    ids = _accept(JobService(runtime), _urls(world, 2 * SUB_CHUNK + 20, offset=1000))
    statuses = _wait_ended(runtime.store, ids, timeout_s=240)
    assert Counter(statuses.values()) == {"succeeded": len(ids)}
    _assert_recorded_once(runtime.store, ids)
    chunks = sorted(
        {str((j.notes or {}).get(CHUNK_NOTE)) for j in runtime.store.jobs.get_many(ids)}
    )
    steps = _chunk_steps(chunks)
    sizes = {chunk: len(ids_of) for chunk, ids_of in _items_by_chunk(runtime, ids).items()}
    for chunk, taken in steps.items():
        parts = -(-sizes[chunk] // SUB_CHUNK)
        assert [name for name, _ in taken] == [f"subchunk:{n}" for n in range(parts)], taken
        outputs = [output for _, output in taken]
        assert all(set(output) == {"recorded", "left", "skipped"} for output in outputs)
        assert sum(output["recorded"] for output in outputs) == sizes[chunk]
    rows = _checkpoint_bytes(settings, chunks)  # as stored (serialized): small
    assert len(rows) == sum(-(-n // SUB_CHUNK) for n in sizes.values())
    assert all(size < 512 for _, size in rows), rows


def _items_by_chunk(runtime: Runtime, ids: list[str]) -> dict[str, list[str]]:
    chunks: dict[str, list[str]] = {}
    for job in runtime.store.jobs.get_many(ids):
        chunks.setdefault(str((job.notes or {}).get(CHUNK_NOTE)), []).append(job.id)
    return chunks


@pytest.mark.timeout(300)
def test_a_retried_sub_chunk_step_does_not_take_back_an_item_that_left(
    make_runtime: RuntimeFactory,
    settings: Settings,
    world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sub-chunk's step fetches again when it runs again (no checkpoint of its fetch).
    One item is paused before its chunk runs, so it leaves the chunk (to wait, paused, as
    its own job); the enqueue of its own workflow, after the record transaction committed,
    fails with a database error, so the step runs again, before that workflow exists: the
    item is no longer the chunk's (its row notes it), so it gets no second "left chunk"
    note and no result from the chunk, and its workflow is enqueued by the re-run.
    Resumed, it ends as its own job, recorded once, as does every other item."""
    import asyncio

    settings = _settings(settings, world)
    accepting: Runtime = make_runtime(_registry(settings), settings=settings, run_workers=False)
    service = JobService(accepting)
    ids = _accept(service, _urls(world, 30, offset=1200))
    paused = ids[7]
    asyncio.run(service.pause(paused, actor="test"))
    accepting.stop()

    fired = Counter[str]()
    original = Runtime.enqueue_many

    def enqueue_fails_once(self: Runtime, jobs: Any) -> int:
        if not fired["enqueue"] and paused in {job.id for job in jobs}:
            fired["enqueue"] += 1
            raise sa.exc.OperationalError("INSERT", {}, Exception("injected: connection lost"))
        return original(self, jobs)

    monkeypatch.setattr(Runtime, "enqueue_many", enqueue_fails_once)
    runtime: Runtime = make_runtime(_registry(settings), settings=settings)
    service = JobService(runtime)
    rest = [i for i in ids if i != paused]
    statuses = _wait_ended(runtime.store, rest, timeout_s=120)
    # the enqueue runs after the record's commit: the items it recorded may read ended first
    wait_until_sync(lambda: fired["enqueue"] == 1, timeout=60)
    assert fired == {"enqueue": 1}
    assert Counter(statuses[i] for i in rest) == {"succeeded": len(rest)}
    wait_until_sync(lambda: _workflow_ids([paused]) == {paused}, timeout=60)
    notes = [e for e in runtime.store.jobs.events(paused) if e.reason.startswith("left chunk")]
    assert len(notes) == 1, [e.reason for e in notes]
    held = runtime.store.jobs.get(paused)
    assert held.paused
    assert held.status not in ENDED
    asyncio.run(service.resume(paused, actor="test"))
    assert _wait_ended(runtime.store, [paused], timeout_s=120)[paused] == "succeeded"
    _assert_recorded_once(runtime.store, ids)


OLD_LAYOUTS = {
    # layout: (its workflow function, its workflow name, the step names it writes, part size)
    "two steps per sub-chunk of 50": (
        "chunk_workflow_v1",
        "portwright.chunk",
        {"fetch", "record"},
        50,
    ),
    "one step per sub-chunk of 50": ("chunk_workflow_v2", "portwright.chunk.v2", {"subchunk"}, 50),
}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("layout", sorted(OLD_LAYOUTS))
def test_a_chunk_begun_in_an_older_layout_is_recovered_by_this_code(
    make_runtime: RuntimeFactory,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
) -> None:
    """An upgrade mid-batch: chunks enqueued as older code enqueued them — the workflow
    `portwright.chunk` (two steps per sub-chunk of 50, `fetch:N` then `record:N`) or
    `portwright.chunk.v2` (one step per sub-chunk of 50, `subchunk:N`, its size in no
    argument) — run on a worker that is SIGKILLed once some sub-chunks have checkpointed in
    that layout; the restarted worker recovers them (DBOS finds their function by its name,
    and each checkpoint at its id under its name: no step-name mismatch; a v2 chunk walks
    parts of 50 again, though new chunks take `SUB_CHUNK` at a time), they finish, and
    every item ends with exactly one recorded result."""
    from dbos import DBOS

    from portwright.orchestrator import _chunks

    attribute, workflow_name, step_names, size = OLD_LAYOUTS[layout]
    old = getattr(_chunks, attribute)
    with _world() as world:
        settings = _settings(settings, world)
        runtime: Runtime = make_runtime(_registry(settings), settings=settings, run_workers=False)
        monkeypatch.setattr(_chunks, "chunk_workflow", old)
        monkeypatch.setattr(
            _chunks, "_workflow_args", lambda c: (c.chunk_id, c.adapter, list(c.job_ids))
        )
        ids = _accept(JobService(runtime), _urls(world, 400, offset=4200))
        monkeypatch.undo()
        chunks = sorted(_items_by_chunk(runtime, ids))
        assert len(chunks) == 2
        named = DBOS.list_workflows(workflow_ids=chunks, load_input=False, load_output=False)
        assert {status.name for status in named} == {workflow_name}
        worker = ChunkWorker(settings, "chunk-upgrade", tmp_path / "worker.log")
        try:
            worker.start()

            def some_recorded() -> bool:
                # items recorded AND a step's checkpoint written: a record commits before
                # its step's checkpoint does, so a kill on the count alone (under load) could
                # come before any checkpoint, and the test would prove nothing
                if runtime.store.jobs.counts_by_status().get("succeeded", 0) < 60:
                    return False
                return any(_chunk_steps(chunks).values())

            wait_until_sync(some_recorded, timeout=300, every=0.05)
            worker.kill()
            killed_at = runtime.store.jobs.counts_by_status().get("succeeded", 0)
            before = _chunk_steps(chunks)
            worker.start()
            statuses = _wait_ended(runtime.store, ids, timeout_s=600)
        finally:
            worker.stop()
        assert killed_at < len(ids), "the kill came after the batch ended: it proves nothing"
        taken = [name for steps in before.values() for name, _ in steps]
        assert taken, "nothing had checkpointed at the kill: it proves nothing"
        assert all(name.split(":")[0] in step_names for name in taken), taken
        assert Counter(statuses.values()) == {"succeeded": len(ids)}
        _assert_recorded_once(runtime.store, ids)
        ended = DBOS.list_workflows(workflow_ids=chunks, load_input=False, load_output=False)
        assert {status.status for status in ended} == {"SUCCESS"}
        after = _chunk_steps(chunks)
        sizes = {chunk: len(of) for chunk, of in _items_by_chunk(runtime, ids).items()}
        for chunk in chunks:  # the old layout to its end: the checkpoints before the kill kept
            names = [name for name, _ in after[chunk]]
            assert {name for name, _ in before[chunk]} <= set(names)
            assert all(name.split(":")[0] in step_names for name in names), names
            parts = {int(name.split(":")[1]) for name in names}
            assert parts == set(range(-(-sizes[chunk] // size))), names  # its parts of 50
