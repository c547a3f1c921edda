"""Which of a chunk's items wait for their target site (`Runtime.sites_holding`, read by
each sub-chunk's fetch step): a site cooling down, one tenant's use of a site cooling
down, a site's breaker open or half open; every item's validated input kept for its run.
On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.orchestrator._tx import site_breaker
from portwright.settings import Settings
from portwright.store import JobRecord
from portwright.store._jobs import NewJob
from portwright.store._schema import breakers
from tests.conftest import RuntimeFactory


def _accept(store: Any, rows: list[tuple[str, str, dict[str, Any]]]) -> list[JobRecord]:
    machine = ScrapeAdapter.machine
    new = [
        NewJob(
            job_id=f"job_{i:04d}",
            tenant_id=tenant,
            adapter=adapter,
            adapter_version=ScrapeAdapter.version,
            portal=ScrapeAdapter.portal_name(),
            state=machine.initial,
            status=machine.status_of(machine.initial),
            input=data,
            lock_key=None,
            priority=0,
            actor="api",
        )
        for i, (tenant, adapter, data) in enumerate(rows)
    ]
    with store.engine.begin() as conn:
        return store.jobs.insert_many(conn, new)[0]


def test_items_of_a_cooling_or_broken_site_are_held_and_their_inputs_kept(
    make_runtime: RuntimeFactory, settings: Settings
) -> None:
    registry = AdapterRegistry()
    registry.register(ScrapeAdapter)
    runtime = make_runtime(registry, settings=settings, run_workers=False)
    store = runtime.store
    portal = ScrapeAdapter.portal_name()
    store.portals.ensure(portal, max_concurrency=8)
    one, two = store.tenants.ensure("one").id, store.tenants.ensure("two").id
    now = time.time()
    store.sites.extend_cooldown(portal, "cool.test", until=now + 600, reason="429s", cause="t")
    store.sites.extend_cooldown(
        portal, "own.test", tenant_id=one, until=now + 600, reason="session 429", cause="t"
    )
    store.sites.extend_cooldown(portal, "past.test", until=now - 1, reason="over", cause="t")
    with store.engine.begin() as conn:
        for host, state in (("open.test", "open"), ("half.test", "half_open")):
            conn.execute(
                sa.insert(breakers).values(
                    name=site_breaker(portal, host), state=state, updated_at=now
                )
            )
        conn.execute(  # a cooling site's breaker is not what holds its items
            sa.insert(breakers).values(
                name=site_breaker(portal, "cool.test"), state="open", updated_at=now
            )
        )
        conn.execute(
            sa.insert(breakers).values(
                name=site_breaker(portal, "fine.test"), state="closed", updated_at=now
            )
        )
    name = ScrapeAdapter.name
    jobs = _accept(
        store,
        [
            (one, name, {"url": "http://cool.test/a"}),
            (two, name, {"url": "http://cool.test/b"}),
            (one, name, {"url": "http://own.test/a"}),
            (two, name, {"url": "http://own.test/b", "session_id": "s"}),
            (one, name, {"url": "http://open.test/a"}),
            (two, name, {"url": "http://half.test/a"}),
            (one, name, {"url": "http://fine.test/a"}),
            (one, name, {"url": "http://past.test/a"}),
            (one, name, {"url": "http://new.test:8080/a"}),
            (one, name, {"no": "url"}),  # unreadable: its own workflow fails it
            (one, "not-installed", {"url": "http://cool.test/c"}),
        ],
    )
    inputs: dict[str, Any] = {}
    held = runtime.sites_holding(jobs, inputs=inputs)
    ids = [job.id for job in jobs]
    assert held == {
        ids[0]: "site cool.test cooling down: 429s",
        ids[1]: "site cool.test cooling down: 429s",
        ids[2]: "site own.test cooling down: session 429",
        ids[4]: "site open.test circuit open",
        ids[5]: "site half.test circuit half_open",
    }
    assert list(held) == sorted(held)  # in the items' order
    assert set(inputs) == set(ids[:9])
    for job in jobs[:9]:
        adapter, data = inputs[job.id]
        assert adapter is ScrapeAdapter
        assert isinstance(data, ScrapeAdapter.input_model)
        assert data.url == job.input["url"]
    assert runtime.sites_holding(jobs[6:]) == {}  # without `inputs` too
    with store.engine.connect() as conn:
        assert store.portals.breaker_states(conn, []) == {}
        assert store.portals.breaker_states(
            conn,
            [site_breaker(portal, h) for h in ("open.test", "fine.test", "none.test", "open.test")],
        ) == {
            site_breaker(portal, "open.test"): "open",
            site_breaker(portal, "fine.test"): "closed",
            site_breaker(portal, "none.test"): "closed",
        }
