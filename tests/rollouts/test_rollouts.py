"""Adapter versions side by side on SQLite and PostgreSQL: pinning, shadow runs, rollback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from portwright.adapters import AdapterRegistry
from portwright.observability import PROCESS, status_of
from portwright.orchestrator import JobService, RolloutChange
from portwright.sandbox import SandboxWorld
from portwright.settings import Settings
from portwright.store import JobNotFoundError
from portwright.store._schema import shadow_results
from portwright.testing import wait_until
from tests.rollouts._adapters import (
    PinnedAsk,
    PinnedAskV2,
    SiteV1,
    SiteV2,
    SiteV2Held,
    SiteV3,
    SiteV4,
)
from tests.support import Listener, Worker

ServiceFor = Callable[..., JobService]
SETTLED = ("succeeded", "failed", "cancelled")


def _registry(*adapters: Any) -> AdapterRegistry:
    registry = AdapterRegistry()
    for adapter in adapters:
        registry.register(adapter)
    return registry


def _site_service(
    service_for: ServiceFor, settings: Settings, site: Listener, *adapters: Any
) -> Any:
    """A service with these versions of the `site` adapter, allowed to reach `site`."""
    allow = [*settings.url_allowlist, f"127.0.0.1:{site.port}"]
    return service_for(
        _registry(*adapters), settings=settings.model_copy(update={"url_allowlist": allow})
    )


def _counted(name: str, **labels: str) -> float:
    """A process counter's value (the worker runs in this process): `portwright_<name>_total`
    as /metrics serves it."""
    value = PROCESS.registry.get_sample_value(f"portwright_{name}_total", labels)
    return value or 0.0


async def _status(svc: JobService, job_id: str, statuses: tuple[str, ...]) -> Any:
    async def reached() -> Any:
        job = await svc.get(job_id)
        return job if job.status in statuses else None

    return await wait_until(reached, timeout=120)


async def test_a_job_keeps_its_version_while_another_goes_live(service_for: ServiceFor) -> None:
    """A job started on v1 finishes on v1 after v2 goes live; jobs started after run v2."""
    svc = service_for(_registry(PinnedAsk, PinnedAskV2))
    tenant = svc.store.tenants.ensure("acme")
    first = await svc.submit(tenant_id=tenant.id, adapter="pinned", input={})
    assert first.adapter_version == "1", "a candidate version is never the default"
    await _status(svc, first.id, ("waiting",))
    record = svc.rt.rollouts.set("pinned", RolloutChange(live="2"), actor="op:ann", reason="v2")
    assert (record.live, record.updated_by) == ("2", "op:ann")
    second = await svc.submit(tenant_id=tenant.id, adapter="pinned", input={})
    assert second.adapter_version == "2"
    for job in (first, second):
        await _status(svc, job.id, ("waiting",))
        await svc.provide_input(job.id, "answer", job.id, actor="t")
    done_first = await _status(svc, first.id, SETTLED)
    done_second = await _status(svc, second.id, SETTLED)
    assert done_first.output == {"answer": first.id, "version": "1"}
    assert done_second.output == {"answer": second.id, "version": "2"}
    audit = [a for a in svc.store.audit.search(target_id="pinned") if a.action == "rollout.set"]
    assert audit
    assert audit[0].after is not None
    assert audit[0].after["live"] == "2"


async def test_a_rollout_naming_a_version_not_installed_is_refused(
    service_for: ServiceFor,
) -> None:
    """Setting a version nobody installed fails with the field and the installed versions."""
    svc = service_for(_registry(PinnedAsk, PinnedAskV2))
    with pytest.raises(ValueError, match=r"canary: adapter 'pinned' has no version '9'.*1, 2"):
        svc.rt.rollouts.set("pinned", RolloutChange(canary="9"), actor="op")
    with pytest.raises(ValueError, match="canary_percent"):
        svc.rt.rollouts.set("pinned", RolloutChange(canary="2", canary_percent=140), actor="op")


async def test_a_canary_takes_its_named_tenants_and_its_percentage(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """Named tenants start on the canary; others on live, the percentage decides by job id."""
    svc = service_for(_registry(SiteV1, SiteV2))
    acme = svc.store.tenants.ensure("acme")
    beta = svc.store.tenants.ensure("beta")
    change = RolloutChange(canary="2", canary_tenants=[beta.id], canary_percent=0)
    svc.rt.rollouts.set("site", change, actor="op")
    payload = {"url": world.url("echo"), "key": "k"}
    on_beta = await svc.submit(tenant_id=beta.id, adapter="site", input=payload)
    on_acme = await svc.submit(tenant_id=acme.id, adapter="site", input=payload)
    assert (on_beta.adapter_version, on_acme.adapter_version) == ("2", "1")
    svc.rt.rollouts.set("site", RolloutChange(canary_percent=50), actor="op")
    versions = [
        (await svc.submit(tenant_id=acme.id, adapter="site", input=payload)).adapter_version
        for _ in range(40)
    ]
    assert 5 <= versions.count("2") <= 35, versions  # about half, by a stable hash of the id


async def test_a_tenants_own_rollout_wins_over_the_portals(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """A rollout scoped to one tenant steers that tenant's new jobs only; the portal's
    rollout keeps every other tenant; removing the tenant's canary returns it to its own
    live version, not the portal's."""
    svc = service_for(_registry(SiteV1, SiteV2, SiteV3))
    acme = svc.store.tenants.ensure("acme")
    beta = svc.store.tenants.ensure("beta")
    svc.rt.rollouts.set("site", RolloutChange(canary="3", canary_percent=100), actor="op")
    svc.rt.rollouts.set("site", RolloutChange(live="2"), actor="op", scope=beta.id)
    payload = {"url": world.url("echo"), "key": "k"}

    async def version_of(tenant_id: str) -> str:
        job = await svc.submit(tenant_id=tenant_id, adapter="site", input=payload)
        return job.adapter_version

    assert [await version_of(acme.id) for _ in range(3)] == ["3"] * 3  # the portal's canary
    assert [await version_of(beta.id) for _ in range(3)] == ["2"] * 3  # its own live
    svc.rt.rollouts.set("site", RolloutChange(canary="1", canary_percent=100), actor="op",
                        scope=beta.id)  # fmt: skip
    assert await version_of(beta.id) == "1"
    svc.rt.rollouts.set("site", RolloutChange(clear_canary=True), actor="op", scope=beta.id)
    assert await version_of(beta.id) == "2"
    assert await version_of(acme.id) == "3"
    own = svc.store.audit.search(target_id=f"site/{beta.id}")  # audited under its scope
    assert [a.action for a in own] == ["rollout.set"] * 3
    assert [a.action for a in svc.store.audit.search(target_id="site")] == ["rollout.set"]


async def test_shadow_agreement_is_measured_and_promotes_after_n_jobs(
    service_for: ServiceFor, settings: Settings
) -> None:
    """The shadow runs the read-only step beside live, agrees, and is promoted after 3 jobs."""
    with Listener("127.0.0.1", body='<p class="v">hello</p>') as site:
        svc = _site_service(service_for, settings, site, SiteV1, SiteV2)
        tenant = svc.store.tenants.ensure("acme")
        svc.rt.rollouts.set("site", RolloutChange(shadow="2", promote_after=3), actor="op")
        url = f"http://127.0.0.1:{site.port}/"
        agreed = _counted("shadow_runs", portal="site", step="fetch", outcome="agree")
        for i in range(3):
            job = await svc.submit(
                tenant_id=tenant.id, adapter="site", input={"url": url, "key": f"k{i}"}
            )
            done = await _status(svc, job.id, SETTLED)
            assert done.output is not None
            assert done.output["version"] == "1"
        stats = svc.store.rollouts.shadow_stats("site")
        assert [(s.step, s.shadow_version, s.agree, s.total) for s in stats] == [
            ("fetch", "2", 3, 3)
        ]
        # the agreement rate the alert rules read: portwright_shadow_runs_total{outcome}
        assert _counted("shadow_runs", portal="site", step="fetch", outcome="agree") == agreed + 3
        rollout = svc.store.rollouts.get("site")
        assert rollout is not None
        assert (rollout.live, rollout.shadow) == ("2", None)
        promoted = [
            a for a in svc.store.audit.search(target_id="site") if a.action == "rollout.promote"
        ]
        assert promoted
        assert promoted[0].actor == "rollout:auto"
        # each GET twice (live, shadow): both read the page; nothing else reached it
        assert sorted(h.split()[0] for h in site.hits) == ["GET"] * 6


async def test_a_shadows_write_is_refused_before_it_leaves(
    service_for: ServiceFor, settings: Settings
) -> None:
    """A shadow step that POSTs is refused (recorded as such); the portal sees no POST and
    the live job is unaffected."""
    with Listener("127.0.0.1", body='<p class="v">hello</p>') as site:
        svc = _site_service(service_for, settings, site, SiteV1, SiteV3)
        tenant = svc.store.tenants.ensure("acme")
        svc.rt.rollouts.set("site", RolloutChange(shadow="3", promote_after=1), actor="op")
        url = f"http://127.0.0.1:{site.port}/"
        refused = _counted("shadow_runs", portal="site", step="fetch", outcome="refused")
        job = await svc.submit(tenant_id=tenant.id, adapter="site", input={"url": url, "key": "w"})
        done = await _status(svc, job.id, SETTLED)
        assert done.status == "succeeded"
        assert done.output is not None
        assert done.output["value"] == "hello"
        [stat] = svc.store.rollouts.shadow_stats("site")
        assert (stat.refused, stat.total) == (1, 1)
        assert _counted("shadow_runs", portal="site", step="fetch", outcome="refused") == (
            refused + 1
        )
        assert not any(h.startswith("POST") for h in site.hits), site.hits
        rollout = svc.store.rollouts.get("site")
        assert rollout is not None
        assert rollout.live == "1", "a refused shadow is not promoted"


async def test_a_shadow_that_swallows_its_refused_writes_is_still_refused(
    service_for: ServiceFor, settings: Settings
) -> None:
    """A shadow step tries POST, DELETE, remember, observe and attach, catches each refusal
    and returns the live value: the comparison is `refused` (not `agree`), naming every
    attempt; none of them reached the portal or the job's record, and it is not promoted."""
    with Listener("127.0.0.1", body='<p class="v">hello</p>') as site:
        svc = _site_service(service_for, settings, site, SiteV1, SiteV4)
        tenant = svc.store.tenants.ensure("acme")
        svc.rt.rollouts.set("site", RolloutChange(shadow="4", promote_after=1), actor="op")
        url = f"http://127.0.0.1:{site.port}/"
        job = await svc.submit(tenant_id=tenant.id, adapter="site", input={"url": url, "key": "h"})
        done = await _status(svc, job.id, SETTLED)
        assert (done.status, (done.output or {}).get("value")) == ("succeeded", "hello")
        with svc.store.engine.connect() as conn:
            [(outcome, detail)] = conn.execute(
                sa.select(shadow_results.c.outcome, shadow_results.c.detail).where(
                    shadow_results.c.job_id == job.id
                )
            ).all()
        assert outcome == "refused"
        for attempt in ("POST http", "DELETE http", "remember 'seen'", "observe 'value'",
                        "attach 'page'"):  # fmt: skip
            assert attempt in detail, detail
        assert sorted(h.split()[0] for h in site.hits) == ["GET", "GET"], site.hits
        assert "seen" not in (svc.store.jobs.get(job.id).notes or {})
        record = svc.store.rollouts.get("site")
        assert record is not None
        assert (record.live, record.shadow) == ("1", "4")


@pytest.mark.parametrize("canary_class", [SiteV2, SiteV2Held], ids=["retried", "held"])
async def test_a_canary_broken_by_a_markup_change_is_rolled_back(
    service_for: ServiceFor, world: SandboxWorld, canary_class: Any
) -> None:
    """The page's markup changes; the canary (v2) breaks, live (v1) does not: the rollout
    reverts by itself, audited, counted and alerted; new jobs of its tenant start on v1.
    The canary's parked jobs end cancelled and start again on v1 where its adapter allows
    it (`retry_on_rollback`); where it does not, they keep waiting for an operator."""
    svc = service_for(_registry(SiteV1, canary_class))
    acme = svc.store.tenants.ensure("acme")
    beta = svc.store.tenants.ensure("beta")
    change = RolloutChange(canary="2", canary_tenants=[beta.id], rollback_min_jobs=3)
    svc.rt.rollouts.set("site", change, actor="op")
    rollbacks = _counted("rollout_rollbacks", portal="site")
    world.context("echo").options["markup_class"] = "w"  # the DOM switch
    payload = {"url": world.url("echo"), "key": "k"}
    live = [await svc.submit(tenant_id=acme.id, adapter="site", input=payload) for _ in range(3)]
    canary = [await svc.submit(tenant_id=beta.id, adapter="site", input=payload) for _ in range(3)]
    assert {j.adapter_version for j in canary} == {"2"}
    for job in live:
        assert (await _status(svc, job.id, SETTLED)).status == "succeeded"
    for job in canary:
        await _status(svc, job.id, ("waiting",))  # parked: page changed, an operator is asked

    async def rolled_back() -> bool:
        record = await asyncio.to_thread(svc.store.rollouts.get, "site")
        return record is not None and record.canary is None

    await wait_until(rolled_back, timeout=60)
    [audit] = [
        a for a in svc.store.audit.search(target_id="site") if a.action == "rollout.rollback"
    ]
    assert audit.actor == "rollout:auto"
    assert "3/3" in audit.reason

    async def alerted() -> list[Any]:  # raised right after the rollback, by the same worker
        found = await asyncio.to_thread(svc.store.jobs.escalations)
        return [e for e in found if e.kind == "rollback"]

    alerts = await wait_until(alerted, timeout=30)
    assert len(alerts) == 1
    assert alerts[0].job_id in {j.id for j in canary}
    # what PortwrightCanaryRolledBack reads: counted once (before the alert was raised)
    assert _counted("rollout_rollbacks", portal="site") == rollbacks + 1
    assert {svc.store.jobs.get(j.id).adapter_version for j in canary} == {"2"}
    if not canary_class.retry_on_rollback:
        await _janitor_round_after(svc, time.time())  # the round that rolled back is over
        for job in canary:  # still parked on v2, its page_changed escalation open
            assert svc.store.jobs.get(job.id).status == "waiting"
            [esc] = [e for e in svc.store.jobs.escalations(job_id=job.id)
                     if e.kind == "page_changed"]  # fmt: skip
            assert esc.status == "open"
            with pytest.raises(JobNotFoundError):
                svc.store.jobs.get(f"{job.id}-rb")
        return
    for job in canary:  # parked on v2: cancelled, and started again on v1, where it works
        assert (await _status(svc, job.id, SETTLED)).status == "cancelled"
        again = await _status(svc, f"{job.id}-rb", SETTLED)
        assert (again.status, again.adapter_version) == ("succeeded", "1")
        assert again.output is not None
        assert again.output["version"] == "1"
    after = await svc.submit(tenant_id=beta.id, adapter="site", input=payload)
    assert after.adapter_version == "1"
    assert (await _status(svc, after.id, SETTLED)).status == "succeeded"


async def _janitor_round_after(svc: JobService, moment: float) -> None:
    """Wait for this process's janitor to start a round after `moment`: its rounds run one
    after another and each begins with a heartbeat, so the round running at `moment` (the
    rollback, its alert, its retries) has finished."""

    def beaten() -> bool:
        [me] = [w for w in svc.store.workers.all() if w.id == svc.rt.executor_id]
        return me.heartbeat_at > moment

    await wait_until(lambda: asyncio.to_thread(beaten), timeout=60)


async def test_a_probe_finds_a_dom_shift_before_any_job_does(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """The portal's scheduled probe runs the live version's read-only read; when the markup
    changes it marks the portal degraded (on /status) before any job met the change, and a
    later good probe clears it."""
    svc = service_for(_registry(SiteV1, SiteV2))
    svc.rt.rollouts.set("site", RolloutChange(live="2"), actor="op")  # v2: reads p.v only
    sample = {"url": world.url("echo"), "key": "probe"}
    svc.rt.rollouts.set_probe("site", sample, every_s=1.0, enabled=True, actor="op")

    async def outcome(wanted: str) -> bool:
        probe = await asyncio.to_thread(svc.store.rollouts.probe, "site")
        return probe is not None and probe.last_outcome == wanted

    await wait_until(lambda: outcome("ok"), timeout=60)
    world.context("echo").options["markup_class"] = "w"  # the DOM shift
    await wait_until(lambda: outcome("page_changed"), timeout=60)
    portal = svc.store.portals.get("site")
    assert (portal.degraded_reason or "").startswith("probe: ")
    [shown] = [s for s in status_of(svc.store) if s.name == "site"]
    assert shown.state == "degraded"
    assert svc.store.jobs.search(portal="site") == [], "no customer job met it first"
    probe = svc.store.rollouts.probe("site")
    assert probe is not None
    assert (probe.last_version, probe.failures >= 1) == ("2", True)
    world.context("echo").options["markup_class"] = "v"
    await wait_until(lambda: outcome("ok"), timeout=60)
    await wait_until(lambda: svc.store.portals.get("site").degraded_since is None, timeout=30)
    ledger = world.ledger("echo").entries("hit")
    assert {e.key for e in ledger} == {"probe"}


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_pinned_job_survives_a_sigkill_while_its_successor_goes_live(
    service_for: ServiceFor, settings: Settings, world: SandboxWorld, tmp_path: Path
) -> None:
    """A v1 job whose worker is SIGKILLed mid-run, while v2 goes live, finishes on v1 after
    the worker restarts; a job started after the change runs v2."""
    svc = service_for(_registry(SiteV1, SiteV2, SiteV3), run_workers=False)
    tenant = svc.store.tenants.ensure("acme")
    payload = {"url": world.url("echo"), "key": "pin", "steps": 6, "pause_s": 0.5}
    first = await svc.submit(tenant_id=tenant.id, adapter="site", input=payload)
    worker = Worker(settings, world, "pin-w1", tmp_path / "w.log", "tests.rollouts.version_worker")
    worker.start()
    try:
        await wait_until(lambda: world.ledger("echo").count("hit", "pin") >= 2, timeout=120)
        worker.kill()
        assert svc.store.jobs.get(first.id).status not in SETTLED, "killed mid-run"
        svc.rt.rollouts.set("site", RolloutChange(live="2"), actor="op")
        second = await svc.submit(
            tenant_id=tenant.id, adapter="site", input={**payload, "key": "new"}
        )
        assert second.adapter_version == "2"
        worker.start()
        done_first = await _status(svc, first.id, SETTLED)
        done_second = await _status(svc, second.id, SETTLED)
    finally:
        worker.stop()
    assert done_first.output == {"value": "hello pin", "count": 6, "version": "1"}
    assert done_second.output == {"value": "hello new", "count": 6, "version": "2"}
