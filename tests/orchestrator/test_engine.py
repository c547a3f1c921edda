"""The job engine end to end on SQLite and PostgreSQL, against real loopback portals."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from portwright.orchestrator import JobService
from portwright.sandbox import ChaosKnobs, SandboxWorld, ServiceSpec
from portwright.sandbox.echo import echo_service
from portwright.sdk import UnknownAdapterError
from portwright.settings import Settings
from portwright.testing import EchoAdapter, wait_until
from tests.orchestrator._support import AskAdapter, EchoB, registry
from tests.support import reaching

ServiceFor = Callable[..., JobService]


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    specs = [echo_service("echo"), echo_service("echo-b")]
    with SandboxWorld(specs, seed=5) as w:
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)


async def _settled(svc: JobService, job_id: str, limit: float = 30.0) -> Any:
    async def done() -> Any:
        job = await svc.get(job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return await wait_until(done, timeout=limit)


async def test_job_runs_to_success_and_its_events_replay(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """A job walks its machine to SUCCEEDED, stores its output, and replays from its events."""
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(
        tenant_id=tenant.id,
        adapter="echo",
        input={"url": world.url("echo"), "key": "k1", "steps": 3},
    )
    done = await _settled(svc, job.id)
    assert done.state == "SUCCEEDED"
    assert done.output == {"value": "hello k1", "count": 3}
    states = [e.to_state for e in await svc.events(job.id)]
    assert states == ["INIT", "QUEUED", "FETCHING", "SUCCEEDED"]
    assert svc.replay(job.id).matches
    assert [e.data["step"] for e in world.ledger("echo").entries("hit")] == ["0", "1", "2"]


async def test_submitting_the_same_job_id_twice_runs_it_once(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """The workflow id is the job id: a second submit returns the first job and adds no run."""
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    payload = {"url": world.url("echo"), "key": "once"}
    first = await svc.submit(tenant_id=tenant.id, adapter="echo", input=payload, job_id="job_same")
    second = await svc.submit(tenant_id=tenant.id, adapter="echo", input=payload, job_id="job_same")
    assert first.id == second.id == "job_same"
    await _settled(svc, "job_same")
    assert world.ledger("echo").count("hit", "once") == 1


async def test_transient_failures_are_retried_with_backoff(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """503s are retried (visible as RETRY_WAIT) until the step succeeds."""
    world.chaos("echo").update({"rate_5xx": 0.5})
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    jobs = [
        await svc.submit(
            tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": f"t{i}"}
        )
        for i in range(6)
    ]
    finals = [await _settled(svc, j.id) for j in jobs]
    assert all(j.state == "SUCCEEDED" for j in finals)
    retried = [e for j in jobs for e in await svc.events(j.id) if e.to_state == "RETRY_WAIT"]
    assert retried, "with half the requests failing, some job must have waited to retry"
    assert "503" in retried[0].reason


async def test_exhausted_transient_retries_fail_with_a_reason_and_degrade_the_portal(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """A portal that always answers 503 fails the job after the policy's attempts, with why."""
    world.chaos("echo").update({"rate_5xx": 1.0})
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(
        tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "down"}
    )
    done = await _settled(svc, job.id)
    assert done.state == "FAILED"
    assert done.error_class == "transient"
    assert "gave up on fetch after 5 transient failures" in (done.reason or "")
    portal = svc.store.portals.get("echo")
    assert portal.degraded_since is not None
    assert "503" in (portal.degraded_reason or "")


async def test_a_429_cools_down_the_whole_portal_and_no_other(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """After a 429, the portal's other jobs wait out Retry-After; another portal's do not."""
    world.chaos("echo").update({"rate_429": 1.0, "retry_after_s": 2.5})
    svc = service_for(registry(EchoAdapter, EchoB))
    tenant = svc.store.tenants.ensure("acme")
    first = await svc.submit(
        tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "first"}
    )
    await wait_until(lambda: svc.store.portals.get("echo").cooldown_until, timeout=15)
    cooldown_until = svc.store.portals.get("echo").cooldown_until
    world.chaos("echo").update({"rate_429": 0.0})
    same = await svc.submit(
        tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "same"}
    )
    other = await svc.submit(
        tenant_id=tenant.id, adapter="echo-b", input={"url": world.url("echo-b"), "key": "other"}
    )
    for job in (first, same, other):
        assert (await _settled(svc, job.id)).state == "SUCCEEDED"
    same_hit = next(e.at for e in world.ledger("echo").entries("hit") if e.key == "same")
    assert same_hit >= cooldown_until, "the portal's other job waited for the window to pass"
    other_states = [e.to_state for e in await svc.events(other.id)]
    assert "COOLDOWN" not in other_states, "another portal's job was not held"
    assert "COOLDOWN" in [e.to_state for e in await svc.events(same.id)]


async def test_a_page_change_parks_the_job_until_an_operator_patches_the_selector(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """A missing selector parks the job with HTML and selector as evidence; a patch resumes it."""
    world.context("echo").options["markup_class"] = "value-v2"
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(
        tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "dom"}
    )

    async def parked() -> Any:
        return (await svc.get(job.id)).state == "OPERATOR_ACTION_REQUIRED"

    await wait_until(parked, timeout=20)
    [esc] = await svc.escalations(job_id=job.id)
    assert esc.kind == "page_changed"
    assert esc.details["selector_key"] == "value"
    assert esc.details["selector"] == "p.v"
    [evidence] = svc.store.jobs.evidence(job.id)
    assert evidence.kind == "html"
    assert b'class="value-v2"' in svc.rt.blobs.get(evidence.blob_key)
    await svc.decide(
        esc.id, "retry", actor="op:alice", selectors={"value": "p.value-v2"}, reason="v2 markup"
    )
    done = await _settled(svc, job.id)
    assert done.state == "SUCCEEDED"
    assert done.output == {"value": "hello dom", "count": 1}
    resolved = svc.store.jobs.escalation(esc.id)
    assert (resolved.status, resolved.resolved_by) == ("resolved", "op:alice")
    [audit] = svc.store.audit.search(target_id="echo")
    assert (audit.before, audit.after) == ({"value": "p.v"}, {"value": "p.value-v2", "version": 1})
    resumed = [e for e in await svc.events(job.id) if e.from_state == "OPERATOR_ACTION_REQUIRED"]
    assert resumed[0].actor == "op:alice"


async def test_patching_one_selector_keeps_the_earlier_patches_of_other_keys(
    service_for: ServiceFor,
) -> None:
    """Each selector-map version carries every override so far: a second fix undoes nothing."""

    class TwoSelectors(EchoAdapter):
        name = "echo-two"
        selectors: ClassVar[Mapping[str, str]] = {"value": "p.v", "count": "span.c"}

    svc = service_for(registry(TwoSelectors))
    svc.patch_selectors("echo-two", {"value": "p.v2"}, actor="op:a", reason="first")
    svc.patch_selectors("echo-two", {"count": "span.c2"}, actor="op:b", reason="second")
    current = svc.rt.selectors_for(TwoSelectors)
    assert (current.version, dict(current.selectors)) == (2, {"value": "p.v2", "count": "span.c2"})
    second = svc.store.audit.search(target_id="echo-two")
    befores = sorted(str(a.before) for a in second)
    assert befores == ["{'count': 'span.c'}", "{'value': 'p.v'}"]


async def test_cancel_ends_a_parked_job_and_closes_its_escalation(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """Cancelling a job waiting for an operator ends it CANCELLED and resolves the escalation."""
    world.context("echo").options["markup_class"] = "broken"
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(
        tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "c"}
    )
    await wait_until(lambda: svc.store.jobs.escalations(job_id=job.id), timeout=20)
    cancelled = await svc.cancel(job.id, actor="op:bob", reason="customer withdrew")
    assert (cancelled.state, cancelled.status, cancelled.reason) == (
        "CANCELLED",
        "cancelled",
        "customer withdrew",
    )
    assert svc.store.jobs.escalations(job_id=job.id)[0].status == "resolved"
    assert svc.replay(job.id).matches


async def test_paused_portal_holds_its_jobs_until_resumed(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """Jobs of a paused portal do not touch it; resuming lets them run; both are audited."""
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    await svc.pause_portal("echo", actor="op:carol", reason="maintenance")
    job = await svc.submit(
        tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "p"}
    )
    await wait_until(lambda: svc.store.jobs.get(job.id).state == "FETCHING", timeout=15)
    # Its attempt read the gate, found the portal paused and sat down to wait. Gate and
    # step function are one checkpointed attempt: one that ran the step despite the pause
    # would not wait (this times out) or would have hit the portal before waiting.
    await wait_until(lambda: svc.rt.pause_waits[job.id] >= 1, timeout=30)
    assert world.ledger("echo").count("hit", "p") == 0
    await svc.resume_portal("echo", actor="op:carol")
    assert (await _settled(svc, job.id)).state == "SUCCEEDED"
    actions = [a.action for a in svc.store.audit.search(target_id="echo")]
    assert actions == ["portal.resume", "portal.pause"]


async def test_jobs_sharing_a_lock_key_never_overlap(
    service_for: ServiceFor, world: SandboxWorld
) -> None:
    """Two jobs with one lock key run one after the other; different keys run side by side."""
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    url = world.url("echo")
    a = await svc.submit(
        tenant_id=tenant.id,
        adapter="echo",
        input={"url": url, "key": "a", "steps": 3, "pause_s": 0.3, "lock": "acct-1"},
    )
    b = await svc.submit(
        tenant_id=tenant.id,
        adapter="echo",
        input={"url": url, "key": "b", "steps": 3, "pause_s": 0.3, "lock": "acct-1"},
    )
    for job in (a, b):
        assert (await _settled(svc, job.id)).state == "SUCCEEDED"
    hits = [e.key for e in world.ledger("echo").entries("hit")]
    assert hits in (["a", "a", "a", "b", "b", "b"], ["b", "b", "b", "a", "a", "a"])


async def test_input_is_waited_for_durably_and_times_out_visibly(service_for: ServiceFor) -> None:
    """A job waits for its named input (status waiting), takes it when given, fails on timeout."""
    svc = service_for(registry(AskAdapter))
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(tenant_id=tenant.id, adapter="ask", input={})
    await wait_until(lambda: svc.store.jobs.get(job.id).waiting_for == "answer", timeout=15)
    assert (await svc.get(job.id)).status == "waiting"
    await svc.provide_input(job.id, "answer", "42", actor="user:dana")
    assert (await _settled(svc, job.id)).output == {"answer": "42"}
    late = await svc.submit(tenant_id=tenant.id, adapter="ask", input={"timeout_s": 0.5})
    done = await _settled(svc, late.id)
    assert (done.state, done.error_class) == ("FAILED", "needs_input")
    assert "no 'answer' input within 0.5s" in (done.reason or "")


async def test_unknown_adapter_and_bad_input_are_refused_before_anything_runs(
    service_for: ServiceFor,
) -> None:
    """Submitting to an unknown adapter names the known ones; bad input names the field."""
    svc = service_for(registry())
    tenant = svc.store.tenants.ensure("acme")
    with pytest.raises(UnknownAdapterError, match="known adapters: echo"):
        await svc.submit(tenant_id=tenant.id, adapter="nope", input={})
    with pytest.raises(ValidationError, match="key"):
        await svc.submit(tenant_id=tenant.id, adapter="echo", input={"url": "http://x", "key": ""})
    assert svc.store.jobs.search() == []


def _proxy_world() -> SandboxWorld:
    from portwright.sandbox import proxies

    defs = [p for p in proxies.DEFAULT_PROXIES if p.name in ("proxy-dc-1", "proxy-dc-2")]
    specs: list[ServiceSpec] = [echo_service("echo"), *proxies.specs(tuple(defs))]
    return SandboxWorld(specs, seed=3)


async def test_a_blocked_identity_is_rotated_and_an_exhausted_pool_escalates(
    service_for: ServiceFor, settings: Settings
) -> None:
    """A 403 burns the job's proxy and retries through the next; with none left, a person acts."""
    from portwright.testing import ListIdentity

    with _proxy_world() as w:
        w.chaos("echo").update({"banned_identities": ["proxy-dc-1"]})
        identity = ListIdentity([w.url("proxy-dc-1"), w.url("proxy-dc-2")])
        svc = service_for(registry(), identity=identity, settings=reaching(settings, w))
        tenant = svc.store.tenants.ensure("acme")
        job = await svc.submit(
            tenant_id=tenant.id, adapter="echo", input={"url": w.url("echo"), "key": "rot"}
        )
        assert (await _settled(svc, job.id)).state == "SUCCEEDED"
        assert identity.burned == [w.url("proxy-dc-1")]
        assert [e.data.get("step") for e in w.ledger("echo").entries("hit")] == ["0"]
        w.chaos("echo").update({"banned_identities": ["proxy-dc-1", "proxy-dc-2"]})
        stuck = await svc.submit(
            tenant_id=tenant.id, adapter="echo", input={"url": w.url("echo"), "key": "stuck"}
        )
        await wait_until(lambda: svc.store.jobs.escalations(job_id=stuck.id), timeout=20)
        [esc] = svc.store.jobs.escalations(job_id=stuck.id)
        assert esc.kind == "blocked"
        assert "no identity left" in esc.reason
        assert (await svc.get(stuck.id)).state == "OPERATOR_ACTION_REQUIRED"


def test_proxy_defs_exist() -> None:
    """The proxy catalogue used above still names the two datacenter proxies."""
    from portwright.sandbox import proxies

    names = {p.name for p in proxies.DEFAULT_PROXIES}
    assert {"proxy-dc-1", "proxy-dc-2"} <= names
    assert ChaosKnobs().banned_identities == []
