"""Set-based batch acceptance (issue 14): `POST /v1/batch` writes O(1) statements per table
whatever the item count, a replay creates nothing, and accepted items survive the runtime
going away before any of them started.

The acceptance runs on a runtime without workers, so the statements counted are the
request's own and no item can start before the "crash"; a second runtime with workers on
the same databases then runs every item to its end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from portwright._ids import new_ids
from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.gateway import UrlGuard, create_app, issue_key
from portwright.orchestrator import JobService, Runtime
from portwright.orchestrator._chunks import CHUNK_NOTE
from portwright.sandbox import SandboxWorld
from portwright.sandbox.echo import echo_service
from portwright.sandbox.scrape import specs as scrape_specs
from portwright.settings import Settings
from portwright.store import NewJob, Store
from portwright.testing import EchoAdapter, wait_until_sync
from tests.conftest import RuntimeFactory
from tests.gateway._support import ServerThread
from tests.support import reaching

ENDED = ("succeeded", "failed", "cancelled")
FIRST_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(?:\w+\.)?\"?(\w+)", re.IGNORECASE)
POLLED = frozenset({"outbox", "webhook_inbox", "deliveries", "notifications", "streams"})
# every INSERT of a statement: one may write several tables (`insert_linked`'s CTEs)
INSERT_INTO = re.compile(r"\bINSERT INTO (?:\w+\.)?\"?(\w+)\"?", re.IGNORECASE)


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    specs = [
        dataclasses.replace(s, options={**s.options, "rate_per_s": 0})
        for s in scrape_specs()
        if s.name == "scrape-static"
    ]
    with SandboxWorld(specs, seed=14) as started:
        yield started


@pytest.fixture
def accept_settings(settings: Settings, world: SandboxWorld) -> Settings:
    return settings.model_copy(
        update={
            "master_key": SecretStr("test-master-key-" + "x" * 32),
            "url_allowlist": [world.url("scrape-static").removeprefix("http://")],
            "rate_limit_default": "100000/minute",
            "rate_limit_write": "100000/minute",
            "api_key_cache_s": 0.0,
        }
    )


def _registry(settings: Settings) -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(ScrapeAdapter.with_guard(UrlGuard.from_allowlist(settings.url_allowlist)))
    return registry


class StatementLog:
    """Every statement run on the given engines, while `recording`."""

    def __init__(self, *engines: sa.Engine) -> None:
        self.engines = engines
        self.statements: list[str] = []
        self.recording = False
        for engine in engines:
            sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if self.recording:
            self.statements.append(statement)

    def close(self) -> None:
        for engine in self.engines:
            sa.event.remove(engine, "before_cursor_execute", self._seen)

    def during(self, action: Callable[[], Any]) -> tuple[Any, list[str]]:
        self.statements = []
        self.recording = True
        try:
            return action(), list(self.statements)
        finally:
            self.recording = False


def _inserts(statements: list[str]) -> Counter[str]:
    found = Counter[str]()
    for statement in statements:
        for table in INSERT_INTO.findall(statement):
            found[table.lower()] += 1
    return found


def _own(statements: list[str]) -> Counter[str]:
    """The statements by kind and first table, less the gateway's background pollers'
    reads (outbox relay, inbox processor, deliveries) that interleave with a request, and
    the relay's claim (a DELETE from its queue, `outbox_pending`, sent each round whether
    or not any are waiting)."""
    kinds = Counter[str]()
    for statement in statements:
        match = FIRST_TABLE.search(statement)
        table = match.group(1).lower() if match else "?"
        kind = statement.split(None, 1)[0].upper()
        if kind == "SELECT" and table in POLLED:
            continue
        if kind in ("DELETE", "WITH") and table == "outbox_pending":
            continue
        kinds[f"{kind} {table}"] += 1
    return kinds


def _batch(world: SandboxWorld, count: int, offset: int = 0) -> dict[str, Any]:
    site = world.url("scrape-static")
    return {"items": [{"url": f"{site}/product/{offset + i + 1}"} for i in range(count)]}


def _wait_workflows(store: Store, job_ids: list[str], timeout_s: float = 60.0) -> None:
    """Until DBOS has the workflow that runs each job: its chunk's (a batchable adapter's
    batch item, see `portwright.orchestrator._chunks`) or its own."""
    from dbos import DBOS

    ids = sorted({(j.notes or {}).get(CHUNK_NOTE) or j.id for j in store.jobs.get_many(job_ids)})

    def all_there() -> bool:
        found = DBOS.list_workflows(workflow_ids=ids, load_input=False, load_output=False)
        return len(found) == len(ids)

    wait_until_sync(all_there, timeout=timeout_s)


def _wait_ended(service: JobService, ids: list[str], timeout_s: float) -> dict[str, str]:
    """Every job's status once all have ended, or the last statuses seen at the deadline."""
    statuses: dict[str, str] = {}

    def ended() -> bool:
        statuses.update({job_id: service.store.jobs.get(job_id).status for job_id in ids})
        return all(s in ENDED for s in statuses.values())

    with contextlib.suppress(AssertionError):
        wait_until_sync(ended, timeout=timeout_s, every=0.2)
    return statuses


@pytest.mark.timeout(600)
def test_batch_acceptance_is_set_based_and_survives_a_stop_before_any_item_started(
    make_runtime: RuntimeFactory, accept_settings: Settings, world: SandboxWorld
) -> None:
    """10 and 200 items are accepted with the same statements (one multi-row INSERT into
    jobs, job_events, usage_records and DBOS's workflow_status each); the runtime then stops
    before any item ran, and a new one with workers runs every accepted item to its end."""
    from dbos._dbos import _get_dbos_instance

    runtime: Runtime = make_runtime(
        _registry(accept_settings), settings=accept_settings, run_workers=False
    )
    service = JobService(runtime)
    key = issue_key(runtime.store, tenant="acme", plan="business").key
    server = ServerThread(create_app(service, accept_settings)).start()
    log = StatementLog(runtime.store.engine)
    system = StatementLog(_get_dbos_instance()._sys_db.engine)
    accepted: list[str] = []
    try:
        with httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {key}"}, timeout=120
        ) as api:
            warm = api.post("/v1/batch", json=_batch(world, 2, offset=900))  # caches warmed
            assert warm.status_code == 202, warm.text
            accepted += [j["id"] for j in warm.json()["jobs"]]
            _wait_workflows(runtime.store, accepted)
            seen: dict[int, list[str]] = {}
            enqueued: dict[int, list[str]] = {}
            for count, offset in ((10, 0), (200, 10)):

                def post_and_wait(c: int = count, o: int = offset) -> tuple[Any, list[str]]:
                    reply, statements = log.during(
                        lambda: api.post("/v1/batch", json=_batch(world, c, o))
                    )
                    assert reply.status_code == 202, reply.text
                    # the 202 comes once the jobs are committed; DBOS is told just after
                    # (a batch's chunks may be enqueued before this line runs: the DBOS
                    # side is recorded from the request on)
                    _wait_workflows(runtime.store, [j["id"] for j in reply.json()["jobs"]])
                    return reply, statements

                (reply, statements), dbos_side = system.during(post_and_wait)
                jobs = reply.json()["jobs"]
                assert len(jobs) == count
                assert [j["input"]["url"] for j in jobs] == [
                    i["url"] for i in _batch(world, count, offset)["items"]
                ]
                accepted += [j["id"] for j in jobs]
                seen[count] = statements
                enqueued[count] = dbos_side
            usage = api.get("/v1/usage").json()
            assert usage["jobs"] == len(accepted)
            assert usage["by_tier"]["pending"] == {"requests": len(accepted), "credits": 212}
        for table in ("jobs", "job_events", "usage_records"):
            assert _inserts(seen[10])[table] == 1, (table, _inserts(seen[10]))
        assert _own(seen[10]) == _own(seen[200]), "the statements grew with the items"
        # DBOS side: one multi-row INSERT of ENQUEUED workflows and one of their inputs
        # (its background threads also run, so only the inserts are the request's alone)
        for count in (10, 200):
            dbos_inserts = _inserts(enqueued[count])
            assert dbos_inserts == {"workflow_status": 1, "workflow_input": 1}, dbos_inserts
        # every item accepted, nothing started: queued rows and ENQUEUED workflows
        assert runtime.store.jobs.counts_by_status() == {"queued": len(accepted)}
    finally:
        log.close()
        system.close()
        server.stop()
    runtime.stop()  # the process goes away after acceptance, before any item started

    restarted = make_runtime(_registry(accept_settings), settings=accept_settings)
    statuses = _wait_ended(JobService(restarted), accepted, timeout_s=300)
    assert Counter(statuses.values()) == {"succeeded": len(accepted)}, Counter(statuses.values())
    for job_id in accepted[:3]:
        events = restarted.store.jobs.events(job_id)
        assert events[0].seq == 1
        assert events[0].reason == "submitted"
        assert events[-1].to_state == restarted.store.jobs.get(job_id).state


def test_a_batch_answers_202_once_its_chunk_workflows_are_enqueued(
    make_runtime: RuntimeFactory,
    accept_settings: Settings,
    world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 202 of a batch of a batchable adapter starts after its chunk workflows are in
    DBOS (what the workers wait for), each item's row naming one of them: they are enqueued
    in the acceptance's thread right after its commit, not after the answer."""
    from dbos import DBOS

    from portwright.orchestrator import _service

    order: list[str] = []
    enqueue = _service.enqueue_chunks

    def enqueue_chunks(*args: Any) -> int:
        created = enqueue(*args)
        order.append("chunks enqueued")
        return created

    monkeypatch.setattr(_service, "enqueue_chunks", enqueue_chunks)
    runtime: Runtime = make_runtime(
        _registry(accept_settings), settings=accept_settings, run_workers=False
    )
    service = JobService(runtime)
    key = issue_key(runtime.store, tenant="acme", plan="business").key
    app = create_app(service, accept_settings)

    async def answers_noted(scope: Any, receive: Any, send: Any) -> None:
        async def noted(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["path"] == "/v1/batch":
                order.append(f"answered {message['status']}")
            await send(message)

        await app(scope, receive, noted)

    server = ServerThread(answers_noted).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {key}"}, timeout=120
        ) as api:
            reply = api.post("/v1/batch", json=_batch(world, 30))
            assert reply.status_code == 202, reply.text
            ids = [j["id"] for j in reply.json()["jobs"]]
        assert order == ["chunks enqueued", "answered 202"]
        jobs = runtime.store.jobs.get_many(ids)
        chunks = {(j.notes or {}).get(CHUNK_NOTE) for j in jobs}
        assert len(jobs) == 30
        assert None not in chunks
        found = DBOS.list_workflows(workflow_ids=sorted(map(str, chunks)), load_input=False)
        assert sorted(w.workflow_id for w in found) == sorted(map(str, chunks))
        assert {w.status for w in found} == {"ENQUEUED"}
    finally:
        server.stop()


def test_a_chunk_enqueue_that_fails_after_the_commit_still_answers_202(
    make_runtime: RuntimeFactory,
    accept_settings: Settings,
    world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DBOS failing to enqueue the chunks after the jobs committed does not fail the
    request: the batch was accepted (202, every item queued, its usage recorded), and its
    chunks are left to the janitor's orphan scan (`test_items_accepted_but_never_enqueued_…`)."""
    from portwright.orchestrator import _service

    def broken(*_args: Any) -> int:
        raise RuntimeError("DBOS unreachable")

    monkeypatch.setattr(_service, "enqueue_chunks", broken)
    runtime: Runtime = make_runtime(
        _registry(accept_settings), settings=accept_settings, run_workers=False
    )
    service = JobService(runtime)
    key = issue_key(runtime.store, tenant="acme", plan="business").key
    server = ServerThread(create_app(service, accept_settings)).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {key}"}, timeout=120
        ) as api:
            reply = api.post("/v1/batch", json=_batch(world, 12))
            assert reply.status_code == 202, reply.text
            ids = [j["id"] for j in reply.json()["jobs"]]
            usage = api.get("/v1/usage").json()
        assert [j.status for j in runtime.store.jobs.get_many(ids)] == ["queued"] * 12
        assert usage["jobs"] == 12
    finally:
        server.stop()


def test_a_replayed_batch_returns_the_same_answer_and_creates_nothing(
    make_runtime: RuntimeFactory, accept_settings: Settings, world: SandboxWorld
) -> None:
    """The same batch with the same Idempotency-Key answers the first 202 again (replayed)
    and accepts no job, reserves no quota and records no usage a second time."""
    runtime: Runtime = make_runtime(
        _registry(accept_settings), settings=accept_settings, run_workers=False
    )
    service = JobService(runtime)
    key = issue_key(runtime.store, tenant="acme", plan="business").key
    server = ServerThread(create_app(service, accept_settings)).start()
    headers = {"authorization": f"Bearer {key}", "idempotency-key": "batch-1"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as api:
            first = api.post("/v1/batch", json=_batch(world, 25))
            assert first.status_code == 202, first.text
            usage = api.get("/v1/usage").json()
            again = api.post("/v1/batch", json=_batch(world, 25))
            assert again.status_code == 202
            assert again.headers.get("idempotent-replayed") == "true"
            assert again.json() == first.json()
            assert api.get("/v1/usage").json() == usage
            other = api.post("/v1/batch", json=_batch(world, 3))
            assert other.status_code == 422  # same key, different body
    finally:
        server.stop()
    assert runtime.store.jobs.counts_by_status() == {"queued": 25}
    ids = {j["id"] for j in first.json()["jobs"]}
    _wait_workflows(runtime.store, sorted(ids))
    with runtime.store.engine.connect() as conn:
        recorded = conn.execute(sa.text("SELECT job_id FROM usage_records")).scalars().all()
    assert sorted(recorded) == sorted(ids)


def test_a_batch_retried_after_the_gateway_died_mid_request_creates_no_second_items(
    make_runtime: RuntimeFactory, accept_settings: Settings, world: SandboxWorld
) -> None:
    """A gateway killed after accepting a batch but before storing its answer leaves the
    Idempotency-Key claimed without an answer; once its lease ends the client's retry is
    served afresh. Its items are named from the claim, so the retry gets the same batch and
    the same items back, metered once, instead of accepting the URLs a second time."""
    from portwright.store._schema import idempotency_keys

    runtime: Runtime = make_runtime(
        _registry(accept_settings), settings=accept_settings, run_workers=False
    )
    service = JobService(runtime)
    issued = issue_key(runtime.store, tenant="acme", plan="business")
    server = ServerThread(create_app(service, accept_settings)).start()
    headers = {"authorization": f"Bearer {issued.key}", "idempotency-key": "batch-died"}

    def gateway_died_before_answering() -> None:
        with runtime.store.engine.begin() as conn:
            changed = conn.execute(
                idempotency_keys.update()
                .where(
                    idempotency_keys.c.tenant_id == issued.record.tenant_id,
                    idempotency_keys.c.key == "batch-died",
                )
                .values(
                    state="in_flight", lease_until=0.0, status_code=None, headers=None, body=None
                )
            )
        assert changed.rowcount == 1

    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as api:
            first = api.post("/v1/batch", json=_batch(world, 25))
            assert first.status_code == 202, first.text
            usage = api.get("/v1/usage").json()
            gateway_died_before_answering()
            again = api.post("/v1/batch", json=_batch(world, 25))
            assert again.status_code == 202, again.text
            assert again.headers.get("idempotent-replayed") is None  # served, not replayed
            assert again.json()["batch_id"] == first.json()["batch_id"]
            first_ids = [j["id"] for j in first.json()["jobs"]]
            assert [j["id"] for j in again.json()["jobs"]] == first_ids
            assert api.get("/v1/usage").json() == usage  # metered once
            replay = api.post("/v1/batch", json=_batch(world, 25))
            assert replay.headers.get("idempotent-replayed") == "true"
            assert replay.json() == again.json()
            gateway_died_before_answering()
            other = api.post("/v1/batch", json=_batch(world, 3, offset=100))  # another body
            assert other.status_code == 202, other.text
            assert not {j["id"] for j in other.json()["jobs"]} & set(first_ids)
    finally:
        server.stop()
    assert runtime.store.jobs.counts_by_status() == {"queued": 28}
    ids = sorted(j["id"] for j in first.json()["jobs"])
    with runtime.store.engine.connect() as conn:
        recorded = (
            conn.execute(sa.select(sa.text("job_id")).select_from(sa.text("usage_records")))
            .scalars()
            .all()
        )
    assert Counter(r for r in recorded if r in set(ids)) == dict.fromkeys(ids, 1)
    _wait_workflows(runtime.store, ids)


@pytest.mark.timeout(300)
def test_items_accepted_but_never_enqueued_are_enqueued_by_the_janitor(
    make_runtime: RuntimeFactory,
    accept_settings: Settings,
    world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash between the acceptance's two commits (jobs written, DBOS not yet told): the
    janitor finds every queued job without a workflow and enqueues them, and each ends.
    Its page made small (30 of 500) so that a few dozen jobs span more than one page, and
    its scans come every 0.5 s for jobs 0.5 s old (not 5 s and 5 s): the same two pages,
    found without the test waiting out a production cadence on each."""
    from portwright.orchestrator import _janitor

    monkeypatch.setattr(_janitor, "ORPHAN_PAGE", 30)
    monkeypatch.setattr(_janitor, "ORPHAN_AGE_S", 0.5)
    monkeypatch.setattr(_janitor, "ORPHAN_EVERY_S", 0.5)
    registry = _registry(accept_settings)
    runtime: Runtime = make_runtime(registry, settings=accept_settings)
    adapter = registry.get("scrape")
    tenant_id = runtime.store.tenants.ensure("acme", plan="business").id
    site = world.url("scrape-static")
    new = [
        NewJob(
            job_id=job_id,
            tenant_id=tenant_id,
            adapter=adapter.name,
            adapter_version=adapter.version,
            portal=adapter.portal_name(),
            state=adapter.machine.initial,
            status=adapter.machine.status_of(adapter.machine.initial),
            input=adapter.input_model.model_validate({"url": f"{site}/product/{i + 1}"}).model_dump(
                mode="json"
            ),
            lock_key=None,
            priority=0,
            actor="test",
        )
        for i, job_id in enumerate(new_ids("job", _janitor.ORPHAN_PAGE + 20))  # two pages
    ]
    with runtime.store.engine.begin() as conn:
        records, created = runtime.store.jobs.insert_many(conn, new)
    assert len(created) == len(new)
    statuses = _wait_ended(JobService(runtime), [r.id for r in records], timeout_s=240)
    assert Counter(statuses.values()) == {"succeeded": len(new)}, Counter(statuses.values())


@pytest.mark.timeout(300)
def test_a_fan_out_spawn_is_set_based_idempotent_and_survives_a_stop(
    make_runtime: RuntimeFactory, settings: Settings
) -> None:
    """`insert_children` (the `job.spawn` step) writes 10 or 200 children with the same
    statements, a re-run of the step (a retry, a replay) adds nothing, and children spawned
    before the runtime stopped all run once a new one starts."""
    from dbos._dbos import _get_dbos_instance

    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    with SandboxWorld([echo_service()], seed=9) as echo:
        settings = reaching(settings, echo)  # the children fetch from it
        runtime: Runtime = make_runtime(registry, run_workers=False, settings=settings)
        tenant_id = runtime.store.tenants.ensure("acme").id
        log = StatementLog(runtime.store.engine)
        system = StatementLog(_get_dbos_instance()._sys_db.engine)
        spawned: list[str] = []
        seen: dict[int, list[str]] = {}
        try:
            for count in (10, 200):
                parent, _ = runtime.store.jobs.insert(
                    job_id=f"job_parent_{count}",
                    tenant_id=tenant_id,
                    adapter="echo",
                    adapter_version="1",
                    portal="echo",
                    state="DONE",
                    status="succeeded",
                    input={"url": echo.url("echo"), "key": "parent"},
                    lock_key=None,
                    priority=0,
                    actor="test",
                )
                items = [
                    (f"item-{i}", {"url": echo.url("echo"), "key": f"k{count}-{i}"})
                    for i in range(count)
                ]
                (children, dbos_side), statements = log.during(
                    lambda p=parent.id, i=items: system.during(
                        lambda: runtime.insert_children(p, "echo", i)
                    )
                )
                assert [c["id"] for c in children] == [f"{parent.id}.{i:04d}" for i in range(count)]
                seen[count] = statements
                assert _inserts(dbos_side) == {"workflow_status": 1, "workflow_input": 1}
                again, replayed = log.during(
                    lambda p=parent.id, i=items: runtime.insert_children(p, "echo", i)
                )
                assert again == children
                assert not _inserts(replayed), "a re-run of the spawn step inserted rows"
                spawned += [c["id"] for c in children]
        finally:
            log.close()
            system.close()
        for table in ("jobs", "job_events"):
            assert _inserts(seen[10])[table] == 1, _inserts(seen[10])
        assert _own(seen[10]) == _own(seen[200])
        assert runtime.store.jobs.counts_by_status() == {"queued": 210, "succeeded": 2}
        runtime.stop()

        restarted = make_runtime(registry, settings=settings)
        statuses = _wait_ended(JobService(restarted), spawned, timeout_s=240)
        assert Counter(statuses.values()) == {"succeeded": 210}, Counter(statuses.values())
        children = restarted.store.jobs.children("job_parent_10")
        assert [c.item_key for c in children] == [f"item-{i}" for i in range(10)]
