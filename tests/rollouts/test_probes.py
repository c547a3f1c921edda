"""Synthetic probes as DBOS scheduled workflows, on SQLite and PostgreSQL: a DOM shift
raises one portal-level escalation before any job meets it, the probe passing resolves it,
/status shows the probe's health, and each tick runs once across two workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOS

from portwright.observability import status_of
from portwright.orchestrator import JobService, RolloutChange, decide_escalation
from portwright.orchestrator._probes import PROBE_WORKFLOW, probe_cron, probe_schedule_name
from portwright.sandbox import SandboxWorld
from portwright.settings import Settings
from portwright.store import EscalationRecord
from portwright.testing import wait_until
from tests.rollouts._adapters import SiteV1, SiteV2, StampedV1, StampedV2, StampedV3
from tests.rollouts.test_rollouts import SETTLED, _counted, _registry, _status
from tests.support import Worker

ServiceFor = Callable[..., JobService]


def _portal_escalations(svc: JobService) -> list[EscalationRecord]:
    page = svc.store.escalations.find(tenant_id=None, portal="site", portal_level=True)
    return page.rows


async def _probed(svc: JobService, outcome: str, *, failures: int = 0) -> bool:
    probe = await asyncio.to_thread(svc.store.rollouts.probe, "site")
    return probe is not None and probe.last_outcome == outcome and probe.failures >= failures


def _setup(svc: JobService, world: SandboxWorld) -> None:
    svc.rt.rollouts.set("site", RolloutChange(live="2"), actor="op")  # v2: reads p.v only
    sample = {"url": world.url("echo"), "key": "probe"}
    svc.rt.rollouts.set_probe("site", sample, every_s=1.0, enabled=True, actor="op")


def test_every_s_becomes_an_evenly_spaced_cron() -> None:
    """The interval is rounded down to a step dividing the minute, hour or day."""
    assert probe_cron(1) == "*/1 * * * * *"
    assert probe_cron(45) == "*/30 * * * * *"
    assert probe_cron(7) == "*/6 * * * * *"
    assert probe_cron(90) == "0 */1 * * * *"
    assert probe_cron(600) == "0 */10 * * * *"
    assert probe_cron(5 * 3600) == "0 0 */4 * * *"
    assert probe_cron(86400) == "0 0 0 * * *"


async def test_a_probe_finds_a_dom_shift_and_escalates_once_before_any_job_fails(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """The portal's DBOS schedule runs its probe every second. The markup switch makes it
    fail: the portal is degraded and ONE portal-level escalation opens (later ticks count
    sightings on it) while no job has met the change; /status shows the probe's health. A
    job started then meets the change after the escalation. The probe passing again
    resolves the escalation (audited) and clears the portal."""
    svc = service_for(_registry(SiteV1, SiteV2))
    _setup(svc, world)
    [schedule] = await DBOS.list_schedules_async(schedule_name_prefix=probe_schedule_name("site"))
    assert schedule["schedule"] == "*/1 * * * * *"
    await wait_until(lambda: _probed(svc, "ok"), timeout=60)
    assert _portal_escalations(svc) == []
    changed = _counted("probes", portal="site", outcome="page_changed")
    world.context("echo").options["markup_class"] = "w"  # the DOM shift
    await wait_until(lambda: _probed(svc, "page_changed", failures=3), timeout=60)
    # counted in portwright_probes_total (right after each tick's record)
    await wait_until(
        lambda: _counted("probes", portal="site", outcome="page_changed") >= changed + 3,
        timeout=30,
    )
    assert svc.store.jobs.search(portal="site") == [], "no customer job met it first"
    [esc] = _portal_escalations(svc)
    assert (esc.status, esc.kind, esc.step, esc.job_id, esc.tenant_id) == (
        "open", "page_changed", "alert", None, ""
    )  # fmt: skip
    assert esc.details["sightings"] >= 2, "later ticks add to the one escalation"
    assert "value" in esc.reason  # the missing selector's key
    [shown] = [s for s in status_of(svc.store) if s.name == "site"]
    assert shown.state == "degraded"
    assert shown.probe is not None
    assert (shown.probe.outcome, shown.probe.failures >= 3) == ("page_changed", True)
    assert shown.probe.age_s is not None
    assert not shown.probe.late

    tenant = svc.store.tenants.ensure("acme")
    payload = {"url": world.url("echo"), "key": "cust"}
    job = await svc.submit(tenant_id=tenant.id, adapter="site", input=payload)
    assert job.adapter_version == "2"
    await _status(svc, job.id, ("waiting", *SETTLED))
    [own] = svc.store.jobs.escalations(job_id=job.id)
    assert own.kind == "page_changed"
    assert esc.created_at < own.created_at, "the probe's escalation came first"

    world.context("echo").options["markup_class"] = "v"
    await wait_until(lambda: _probed(svc, "ok"), timeout=60)
    [closed] = _portal_escalations(svc)
    assert (closed.id, closed.status, closed.resolved_by) == (esc.id, "resolved", "probe")
    assert svc.store.portals.get("site").degraded_since is None
    audit = [a.action for a in svc.store.audit.search(target_id=esc.id)]
    assert audit == ["escalation.resolve"]
    runs = await DBOS.list_workflows_async(name=PROBE_WORKFLOW, load_input=False, load_output=False)
    assert runs
    assert all(r.workflow_id.startswith("sched-portwright-probe-site-") for r in runs)


async def test_an_operator_closes_a_probe_escalation_and_it_stays_closed_for_that_shift(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """An operator acknowledges the portal-level escalation while the probe still fails:
    later failing ticks raise no new one; after the probe passed, the next shift does."""
    svc = service_for(_registry(SiteV1, SiteV2))
    _setup(svc, world)
    world.context("echo").options["markup_class"] = "w"
    await wait_until(lambda: _probed(svc, "page_changed"), timeout=60)
    await wait_until(lambda: len(_portal_escalations(svc)) == 1, timeout=30)
    [esc] = _portal_escalations(svc)
    outcome = await decide_escalation(
        svc, esc.id, "acknowledge", actor="op:ann", reason="on it", tenant_id=None
    )
    assert (outcome.escalation.status, outcome.escalation.resolved_by) == ("resolved", "op:ann")
    probe = svc.store.rollouts.probe("site")
    assert probe is not None
    await wait_until(lambda: _probed(svc, "page_changed", failures=probe.failures + 3), timeout=60)
    assert [e.id for e in _portal_escalations(svc)] == [esc.id], "not raised again"
    world.context("echo").options["markup_class"] = "v"
    await wait_until(lambda: _probed(svc, "ok"), timeout=60)
    world.context("echo").options["markup_class"] = "w"  # a second shift
    await wait_until(lambda: len(_portal_escalations(svc)) == 2, timeout=60)
    newest = _portal_escalations(svc)[0]
    assert (newest.status, newest.id != esc.id) == ("open", True)


async def test_a_disabled_probe_has_no_schedule(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """Disabling a probe deletes its schedule; enabling it writes it again."""
    svc = service_for(_registry(SiteV1, SiteV2))
    sample = {"url": world.url("echo"), "key": "probe"}
    name = probe_schedule_name("site")
    svc.rt.rollouts.set_probe("site", sample, every_s=600, enabled=True, actor="op")
    assert [s["schedule"] for s in await DBOS.list_schedules_async(schedule_name_prefix=name)] == [
        "0 */10 * * * *"
    ]
    svc.rt.rollouts.set_probe("site", sample, every_s=600, enabled=False, actor="op")
    assert await DBOS.list_schedules_async(schedule_name_prefix=name) == []
    assert await svc.rt.rollouts.scheduled_probe("site") == "disabled"
    assert world.ledger("echo").entries("hit") == []


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_each_tick_runs_once_with_two_workers(
    service_for: ServiceFor, settings: Settings, world: SandboxWorld, tmp_path: Path
) -> None:
    """Two worker processes each run DBOS's scheduler for the probe's schedule; every tick
    (the scheduled workflow's id, which the probe sends to the page) reaches the page once."""
    svc = service_for(_registry(SiteV1, SiteV2), run_workers=False)
    workers = [
        Worker(
            settings, world, f"probe-w{i}", tmp_path / f"w{i}.log", "tests.rollouts.version_worker"
        )
        for i in (1, 2)
    ]
    for worker in workers:  # on a loaded machine a 2 s silence would be taken for death,
        worker.env["PORTWRIGHT_DEAD_WORKER_AFTER_S"] = "60"  # and a takeover re-runs a step
        worker.start()
    try:
        for worker in workers:
            await wait_until(lambda w=worker: "ready" in w.log.read_text(), timeout=120)
        _setup(svc, world)

        def ticks() -> Counter[str]:
            return Counter(str(e.data["step"]) for e in world.ledger("echo").entries("hit"))

        await wait_until(lambda: len(ticks()) >= 8, timeout=180)
    finally:
        for worker in workers:
            worker.stop()
    seen = ticks()
    runs = await DBOS.list_workflows_async(name=PROBE_WORKFLOW, load_input=False, load_output=False)
    twice = {t: n for t, n in seen.items() if n != 1}
    detail = [
        (r.workflow_id, r.executor_id, r.status, r.recovery_attempts)
        for r in runs
        if r.workflow_id in twice
    ]
    logs = "\n".join(w.log.read_text()[-3000:] for w in workers)
    assert all(t.startswith("sched-portwright-probe-site-") for t in seen), seen
    assert twice == {}, f"a tick ran more than once: {detail}\n{logs}"
    executors = {r.executor_id for r in runs if r.workflow_id in seen}
    assert executors <= {"probe-w1", "probe-w2"}, executors


async def test_a_shadow_comparison_tolerates_what_the_live_version_lists(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """The live version ignores `served_by` when comparing its read-only step: a shadow
    that differs only there agrees; one whose value differs does not."""
    svc = service_for(_registry(StampedV1, StampedV2, StampedV3))
    tenant = svc.store.tenants.ensure("acme")
    payload = {"url": world.url("echo"), "key": "tol"}

    async def one_job() -> None:
        job = await svc.submit(tenant_id=tenant.id, adapter="stamped", input=payload)
        done = await _status(svc, job.id, SETTLED)
        assert done.output == {"value": "hello tol", "served_by": "live"}, (
            done.status,
            done.reason,
        )

    async def stats() -> list[tuple[str, int, int]]:
        found = await asyncio.to_thread(svc.store.rollouts.shadow_stats, "stamped")
        return [(s.shadow_version, s.agree, s.differ) for s in found]

    svc.rt.rollouts.set("stamped", RolloutChange(shadow="2"), actor="op")
    await one_job()
    await wait_until(lambda: _has(stats, [("2", 1, 0)]), timeout=60)
    svc.rt.rollouts.set("stamped", RolloutChange(shadow="3"), actor="op")
    await one_job()
    await wait_until(lambda: _has(stats, [("2", 1, 0), ("3", 0, 1)]), timeout=60)


async def _has(stats: Callable[[], Any], wanted: list[tuple[str, int, int]]) -> bool:
    return sorted(await stats()) == wanted
