"""Scenario 3: one customer job fans out to hundreds of directories (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from portwright.apps.directories import DirectoryFormAdapter, DirectorySubmissionAdapter
from portwright.apps.directories.demo import PROFILE
from portwright.orchestrator import JobService
from portwright.reports import build_report, to_csv, to_html, to_json
from portwright.resources import TwoCaptchaSolver
from portwright.sandbox import SandboxWorld, captcha, directories
from portwright.settings import Settings
from portwright.testing import wait_until
from tests.orchestrator._support import registry
from tests.support import Worker, reaching

CATALOG = json.loads(directories.DATA_FILE.read_text())["directories"]


def _pick(**sandbox: Any) -> str:
    """The slug of the first directory whose sandbox behaviour matches."""
    for d in CATALOG:
        behaviour = d["sandbox"]
        if all(behaviour.get(k) == v for k, v in sandbox.items() if k != "captcha") and (
            "captcha" not in sandbox or d["captcha"] == sandbox["captcha"]
        ):
            return str(d["slug"])
    raise LookupError(sandbox)


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([*captcha.specs(), *directories.specs()], seed=4) as w:
        w.context("captcha-solver").options["solve_time_s"] = 0.1
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)


def _service(service_for: Callable[..., JobService], world: SandboxWorld) -> JobService:
    solver = TwoCaptchaSolver(world.url("captcha-solver"), "sandbox-key", poll_s=0.05)
    return service_for(registry(DirectorySubmissionAdapter, DirectoryFormAdapter), captcha=solver)


async def _finished(svc: JobService, job_id: str, limit: float = 120) -> Any:
    async def done() -> Any:
        job = await svc.get(job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return await wait_until(done, timeout=limit, every=0.2)


async def test_a_profile_missing_required_fields_is_refused_naming_them(
    service_for: Callable[..., JobService], world: SandboxWorld
) -> None:
    """Nothing is dispatched while the profile lacks a required field; each one is named."""
    svc = _service(service_for, world)
    tenant = svc.store.tenants.ensure("acme")
    incomplete = {k: v for k, v in PROFILE.items() if k not in ("phone", "hours")}
    with pytest.raises(ValidationError) as caught:
        await svc.submit(
            tenant_id=tenant.id, adapter="directory-submission",
            input={"profile": incomplete, "plan": 50, "directories_url": world.url("directories")},
        )  # fmt: skip
    missing = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert missing == {"profile.phone", "profile.hours"}
    too_many = [d["slug"] for d in CATALOG[:60]]
    with pytest.raises(ValidationError, match="60 requested but the plan allows 50"):
        await svc.submit(
            tenant_id=tenant.id, adapter="directory-submission",
            input={"profile": PROFILE, "plan": 50, "directories": too_many,
                   "directories_url": world.url("directories")},
        )  # fmt: skip
    assert svc.store.jobs.search() == []
    assert world.ledger("directories").entries() == []


async def test_items_end_with_reasons_and_retrying_failed_ones_leaves_the_rest_alone(
    service_for: Callable[..., JobService], world: SandboxWorld
) -> None:
    """Each directory ends succeeded or failed with why; a retry re-runs only failed items."""
    ok_single = _pick(error_rate=0.0, outage=None, captcha=False)
    ok_captcha = _pick(error_rate=0.0, outage=None, captcha=True)
    down = _pick(outage="down")
    gone = _pick(outage="gone")
    calm = {"error_rate": 0.0, "outage": None}
    dup = next(
        d["slug"]
        for d in CATALOG
        if d["slug"] not in (ok_single, ok_captcha) and d["sandbox"] == calm and not d["captcha"]
    )
    chosen = [ok_single, ok_captcha, down, gone, dup]
    svc = _service(service_for, world)
    tenant = svc.store.tenants.ensure("acme")
    # someone listed the business on `dup` before this job
    first = await svc.submit(
        tenant_id=tenant.id, adapter="directory-submission",
        input={"profile": PROFILE, "plan": 50, "directories": [dup], "poll_s": 0.2,
               "directories_url": world.url("directories")},
    )  # fmt: skip
    await _finished(svc, first.id)
    job = await svc.submit(
        tenant_id=tenant.id, adapter="directory-submission",
        input={"profile": PROFILE, "plan": 50, "directories": chosen, "poll_s": 0.2,
               "directories_url": world.url("directories")},
    )  # fmt: skip
    done = await _finished(svc, job.id)
    assert done.state == "SUCCEEDED"
    items = {i.item_key: i for i in await svc.items(job.id)}
    assert set(items) == set(chosen)
    assert items[ok_single].status == items[ok_captcha].status == "succeeded"
    assert items[ok_single].output["listing_id"]
    assert (items[gone].status, items[gone].reason) == ("failed", "site gone")
    assert items[down].status == "failed"
    assert "gave up on submit after 4 transient failures" in (items[down].reason or "")
    assert "duplicate listing" in (items[dup].reason or "")
    ledger = world.ledger("directories")
    before = {slug: sum(1 for e in ledger.entries("listing") if e.key.startswith(f"{slug}:"))
              for slug in chosen}  # fmt: skip
    assert before == {ok_single: 1, ok_captcha: 1, down: 0, gone: 0, dup: 1}

    world.context("directories").options["outages"] = {down: "up"}
    retried = await svc.retry_items(job.id, actor="staff:erin")
    assert sorted(r.item_key or "" for r in retried) == sorted([down, gone, dup])
    for r in retried:
        await _finished(svc, r.id)
    after = {i.item_key: i for i in await svc.items(job.id)}
    assert after[down].status == "succeeded"
    assert after[ok_single].id == items[ok_single].id, "succeeded items are not re-run"
    assert world.ledger("directories").duplicates("listing") == {}
    report = build_report(svc.store, job.id)
    assert report.counts == {"total": 5, "failed": 2, "succeeded": 3}
    assert [r.attempts for r in report.items if r.item == down] == [2]
    assert "items.retry" in to_json(report)
    assert to_csv(report).count("\n") == 6
    html = to_html(report)
    assert '<b id="total">5</b>' in html
    assert "<svg" in html


async def test_a_listing_whose_answer_was_lost_is_confirmed_through_an_outage(
    service_for: Callable[..., JobService], world: SandboxWorld
) -> None:
    """A listing job re-run after it sent the final form and died before reading the answer
    (the listing landed) confirms it, even while the directory is down for longer than the
    retry policy's patience: reporting it failed would report a landed listing as missing."""
    slug = _pick(error_rate=0.0, outage=None, captcha=False)
    svc = _service(service_for, world)
    tenant = svc.store.tenants.ensure("acme")
    first = await svc.submit(
        tenant_id=tenant.id, adapter="directory-submission",
        input={"profile": PROFILE, "plan": 50, "directories": [slug], "poll_s": 0.2,
               "directories_url": world.url("directories")},
    )  # fmt: skip
    await _finished(svc, first.id)
    [landed] = svc.store.jobs.children(first.id)
    assert landed.status == "succeeded"

    # The same listing as a job that sent the final form, then died: its note says so.
    world.context("directories").options["outages"] = {slug: "down"}
    machine = DirectoryFormAdapter.machine
    rerun, _ = svc.store.jobs.insert(
        job_id=f"{landed.id}-rerun", tenant_id=tenant.id, adapter=landed.adapter,
        adapter_version=landed.adapter_version, portal=landed.portal, state=machine.initial,
        status=machine.status_of(machine.initial), input=landed.input,
        lock_key=landed.lock_key, priority=0, actor="test",
    )  # fmt: skip
    svc.store.jobs.remember(rerun.id, "final_form_sent", True)
    await svc.rt.enqueue(rerun)
    # Down for longer than the retry policy's patience: the rerun has met the outage more
    # times than the policy's attempts (which give up after ~2 s of backoff) would allow.
    patience = DirectoryFormAdapter.retry.max_attempts
    ledger = world.ledger("directories")

    def past_patience() -> bool:  # or the rerun already gave up: the assertions below say so
        ended = svc.store.jobs.get(rerun.id).status in ("succeeded", "failed", "cancelled")
        return ended or ledger.count("outage", slug) > patience

    await wait_until(past_patience, timeout=120, every=0.1)
    world.context("directories").options["outages"] = {slug: "up"}
    done = await _finished(svc, rerun.id)
    assert (done.status, done.reason) == ("succeeded", None)
    assert done.output == {"listing_id": None, "directory": slug, "confirmed_by": "duplicate"}
    listings = [e for e in world.ledger("directories").entries("listing") if e.key.startswith(slug)]
    assert len(listings) == 1


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_three_hundred_directories_under_chaos_with_a_worker_killed_mid_job(
    service_for: Callable[..., JobService], settings: Settings, world: SandboxWorld, tmp_path: Path
) -> None:
    """A 300-directory job ends with a report accounting for all 300, and no directory
    received the listing twice, although the worker running it was SIGKILLed mid-job. (The
    PostgreSQL copy runs the same path on the plan's smallest size, 50, to keep the suite's
    time in budget; the 300 runs on SQLite.)"""
    size = 300 if str(settings.database_url).startswith("sqlite") else 50
    svc = service_for(registry(DirectorySubmissionAdapter, DirectoryFormAdapter), run_workers=False)
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(
        tenant_id=tenant.id, adapter="directory-submission",
        input={"profile": PROFILE, "plan": size, "poll_s": 0.5,
               "directories_url": world.url("directories")},
    )  # fmt: skip
    worker = Worker(settings, world, "dir-w1", tmp_path / "worker.log")
    # The worker is CPU-bound here; polling every registered queue 20 times a second cost it
    # ~10 % of the run (measured on SQLite). 8 listings at a time finish ~9 a second, so a
    # 0.2 s poll still keeps every slot busy.
    worker.env["PORTWRIGHT_QUEUE_POLLING_INTERVAL_S"] = "0.2"
    worker.start()
    try:
        await wait_until(
            lambda: sum(1 for c in svc.store.jobs.children(job.id) if c.finished_at) >= size // 5,
            timeout=180, every=0.2,
        )  # fmt: skip
        worker.kill()
        worker.start()
        done = await _finished(svc, job.id, limit=400)
    finally:
        worker.stop()
    assert done.state == "SUCCEEDED"
    report = build_report(svc.store, job.id)
    assert report.counts["total"] == size
    assert report.counts.get("succeeded", 0) + report.counts.get("failed", 0) == size
    assert all(r.reason for r in report.items if r.status == "failed")
    assert world.ledger("directories").duplicates("listing") == {}
    listed = {e.key.split(":")[0] for e in world.ledger("directories").entries("listing")}
    succeeded = {r.item for r in report.items if r.status == "succeeded"}
    assert listed == succeeded, [
        (r.item, r.status, r.reason) for r in report.items if r.item in listed ^ succeeded
    ]
