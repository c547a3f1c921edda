"""Transactional pieces: a state change, its audit event and (inside a workflow) the DBOS
checkpoint commit together, so a crash can neither lose nor repeat a transition."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from portwright.orchestrator._results import batch_rows, result_row
from portwright.sdk import StateMachine
from portwright.store import BreakerPolicy, JobRecord, StaleStateError, Store, site_name

__all__ = [
    "TransitionResult",
    "apply_batch",
    "apply_transition",
    "batch_rows",
    "open_escalation",
    "outbox_rows",
    "plan_changes",
    "resolve_escalation",
    "run_batch",
    "site_breaker",
]

TransitionResult = dict[str, Any]


def apply_transition(
    conn: sa.Connection,
    store: Store,
    machine_of: Any,
    job_id: str,
    *,
    to_state: str,
    actor: str,
    reason: str,
    meta: dict[str, Any],
    updates: dict[str, Any] | None = None,
    kind: str = "transition",
) -> TransitionResult:
    """Lock the job, check the machine, write the event. Returns a plain dict (checkpointable).

    `kind="control"` records an event without changing state (pause, resume, notes).
    Result keys: state, seq, status — or finished (terminal already) / illegal.
    """
    change = {
        "to_state": to_state,
        "actor": actor,
        "reason": reason,
        "meta": meta,
        "updates": updates,
        "kind": kind,
    }
    return apply_batch(conn, store, machine_of, job_id, [change])


def apply_batch(
    conn: sa.Connection,
    store: Store,
    machine_of: Any,
    job_id: str,
    changes: list[dict[str, Any]],
    *,
    base_seq: int | None = None,
    job: JobRecord | None = None,
) -> TransitionResult:
    """`apply_transition` for consecutive changes (each a dict of its keyword arguments):
    one job-row update, one insert of their events and one of their outbox rows.

    Stops at the first illegal change, writing the ones before it. `base_seq` makes a
    batch safe to run twice outside a checkpointed transaction: if the job moved past the
    seq the caller last saw and the first change is already among the later events, an
    earlier run of the same batch committed it (nothing is written again). `job` is the
    row when the caller locked it already.
    """
    return _apply(conn, store, machine_of, job_id, changes, base_seq=base_seq, job=job)[0]


def _apply(
    conn: sa.Connection,
    store: Store,
    machine_of: Any,
    job_id: str,
    changes: list[dict[str, Any]],
    *,
    base_seq: int | None,
    job: JobRecord | None,
) -> tuple[TransitionResult, JobRecord]:
    for _ in range(5):
        if job is None:
            job = store.jobs.lock(conn, job_id)
        machine: StateMachine = machine_of(job.adapter)
        if machine.is_terminal(job.state):
            return {"finished": job.state}, job
        if (
            base_seq is not None
            and job.seq > base_seq
            and _applied(conn, store, job, changes, base_seq)
        ):
            return _result(job, job.state, replayed=True), job
        events, values, illegal = plan_changes(job, machine, changes)
        if not events:
            return (illegal or _result(job, job.state)), job
        rows_out = outbox_rows(job, events, values)
        try:  # the job row, its events and their outbox rows (on PostgreSQL one statement)
            new = store.jobs.write_events(conn, job, events, values=values, outbox_rows=rows_out)
        except StaleStateError:
            job = None  # someone else moved the job between our read and write: re-read
            continue
        store.outbox.add_many(conn, batch_rows(conn, rows_out))  # a batch's last item's
        if illegal is not None:
            return {**illegal, "state": new.state, "seq": new.seq}, new
        return _result(new, job.state), new
    raise StaleStateError(f"job {job_id} kept changing under us")


def plan_changes(
    job: JobRecord, machine: StateMachine, changes: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any], TransitionResult | None]:
    """What `changes` add up to from the job as it is, without writing: (its events, each
    with the job's status after it; the job row's final columns; the first illegal change
    or None). Stops at a terminal change or an illegal one."""
    state, status, waiting = job.state, job.status, job.waiting_for
    values: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    illegal: TransitionResult | None = None
    for change in changes:
        kind = change.get("kind", "transition")
        if machine.is_terminal(state):
            break  # a terminal change ends the batch; the job is finished
        target = state if kind == "control" else change["to_state"]
        if kind == "transition" and not machine.allows(state, target):
            illegal = {"illegal": True, "from": state, "to": target}
            break
        updates = dict(change.get("updates") or {})
        if kind == "transition":
            updates = {"waiting_for": None, **updates}
        waiting = updates.get("waiting_for", waiting if kind == "control" else None)
        values.update(updates)
        status = "waiting" if waiting else machine.status_of(target)
        events.append(
            {
                "kind": kind,
                "actor": change["actor"],
                "from_state": state,
                "to_state": target,
                "reason": change["reason"],
                "meta": change.get("meta") or {},
                "status": status,
            }
        )
        state = target
    if events:
        values.update(state=state, status=status)
        if machine.is_terminal(state):
            values["finished_at"] = time.time()
    return events, values, illegal


def outbox_rows(
    before: JobRecord, events: list[dict[str, Any]], values: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The outbox rows of events planned by `plan_changes` for the job as it was; with the
    row's final `values`, also the job's `job.result` event if it ends and has a webhook
    (write them with `batch_rows(conn, rows)` beside: see `_results`)."""
    rows = [_outbox_row(before, before.seq + i, event) for i, event in enumerate(events, 1)]
    result = result_row(before, values) if values else None
    return rows if result is None else [*rows, result]


def _result(job: JobRecord, before: str, *, replayed: bool = False) -> TransitionResult:
    result: TransitionResult = {
        "state": job.state,
        "seq": job.seq,
        "status": job.status,
        "from": before,
    }
    if replayed:
        result["replayed"] = True
    return result


def _applied(
    conn: sa.Connection,
    store: Store,
    job: JobRecord,
    changes: list[dict[str, Any]],
    base_seq: int,
) -> bool:
    """Whether the first of `changes` was written after `base_seq` (by this same batch:
    after the seq its caller last saw, only the caller writes events with its actors)."""
    if not changes:
        return False
    first = changes[0]
    kind = first.get("kind", "transition")
    for event in store.jobs.events_after(conn, job.id, base_seq):
        if (
            event.kind == kind
            and event.actor == first["actor"]
            and event.reason == first["reason"]
            and (kind == "control" or event.to_state == first["to_state"])
        ):
            return True
    return False


def _outbox_row(before: JobRecord, seq: int, event: dict[str, Any]) -> dict[str, Any]:
    """The job event's outbox row, in the same transaction (delivery relays it later)."""
    return {
        "event_id": f"{before.id}:{seq}",
        "topic": f"job.{event['status']}",
        "tenant_id": before.tenant_id,
        "subject": before.id,
        "platform": before.portal,
        "payload": {
            "job_id": before.id,
            "adapter": before.adapter,
            "portal": before.portal,
            "seq": seq,
            "kind": event["kind"],
            "from": event["from_state"],
            "to": event["to_state"],
            "status": event["status"],
            "actor": event["actor"],
            "reason": event["reason"],
        },
    }


def run_batch(
    store: Store,
    machine_of: Any,
    policy: BreakerPolicy,
    job_id: str,
    portal: str,
    *,
    changes: list[dict[str, Any]],
    outcomes: list[bool],
    base_seq: int | None,
    gate: bool,
    leave: dict[str, Any] | None = None,
    site: str | None = None,
) -> tuple[dict[str, Any], JobRecord]:
    """A step's one transaction before it runs (or a job's last write): read the job, its
    portal and breaker in one statement, apply the pending `changes` and the portal outcomes
    of earlier steps, and (with `gate`) decide whether the step may run now.

    Returns (result, the job as written). The result holds state/seq/status (or finished /
    illegal) and, with `gate`, `gate`: None to run, else {paused, wait_until, why, now}.
    `leave` is the change out of the cooldown state, applied only if the step may run.
    `site` (a host, `Adapter.site_of`): the job's target site, whose breaker stands in for
    the portal's and whose cooldowns (the site's, and the tenant's own there) gate it too.
    Not checkpointed itself: the step that calls it is, and `base_seq` makes it safe to
    run again if that step is retried or recovered before its checkpoint.
    """
    breaker = site_breaker(portal, site) if site else f"portal:{portal}"
    with store.engine.begin() as conn:
        lock = bool(changes) or leave is not None
        job, extra = store.jobs.lock_for_step(conn, job_id, breaker=breaker, lock=lock)
        site_degraded = _site_gate(conn, store, portal, site, job.tenant_id, extra)
        result, job = _apply(conn, store, machine_of, job_id, changes, base_seq=base_seq, job=job)
        closed = extra["breaker_state"] in (None, "closed")
        if outcomes and closed:
            store.portals.add_outcomes(conn, breaker, outcomes)
        machine: StateMachine = machine_of(job.adapter)
        if gate and "state" in result and machine.is_terminal(job.state):
            result = {"finished": job.state}
        decision: dict[str, Any] | None = None
        needs_allow = False
        if gate and "state" in result and not result.get("illegal"):
            decision, needs_allow = _gate(job, extra, closed=closed)
            if decision is None and not needs_allow and leave is not None:
                result, job = _leave(conn, store, machine_of, job, leave)
    # Rare paths, each in a transaction of its own after ours committed (on SQLite a
    # second writer inside ours would wait for it).
    if outcomes and not closed:
        for ok in outcomes:
            store.portals.record_outcome(breaker, ok=ok, policy=policy)
    if any(outcomes) and extra["degraded_since"] is not None:
        store.portals.set_degraded(portal, reason=None)
    if any(outcomes) and site and site_degraded:
        store.sites.set_degraded(portal, site, reason=None)
    if needs_allow:
        allowed, retry_at = store.portals.allow(breaker, policy=policy)
        now = time.time()
        if not allowed and retry_at is not None:
            decision = {"paused": False, "wait_until": retry_at, "why": "circuit open", "now": now}
        elif leave is not None:
            with store.engine.begin() as conn:
                result, job = _leave(conn, store, machine_of, None, leave, job_id=job_id)
    if gate:
        result["gate"] = decision
        result["probe"] = needs_allow  # the breaker was not closed: its outcome is urgent
        result["left_cooldown"] = leave is not None and decision is None
    return result, job


def site_breaker(portal: str, site: str) -> str:
    """The breaker of one target site of a portal."""
    return f"site:{site_name(portal, site)}"


def _site_gate(
    conn: sa.Connection,
    store: Store,
    portal: str,
    site: str | None,
    tenant_id: str,
    extra: dict[str, Any],
) -> bool:
    """Fold the site's cooldowns (its own, and this tenant's there) into the portal's in
    `extra`, the latest end winning; whether the site is marked degraded."""
    if not site:
        return False
    names = [site_name(portal, site), site_name(portal, site, tenant_id)]
    degraded = False
    for row in store.sites.read(conn, names):
        degraded = degraded or (row.tenant_id is None and row.degraded_since is not None)
        until, current = row.cooldown_until, extra["cooldown_until"]
        if until is not None and (current is None or until > current):
            whose = f"your use of {row.host}" if row.tenant_id else f"site {row.host}"
            extra["cooldown_until"] = until
            extra["cooldown_reason"] = f"{whose}: {row.cooldown_reason}"
            extra["cooldown_scope"] = "site"
    return degraded


def _gate(
    job: JobRecord, extra: dict[str, Any], *, closed: bool
) -> tuple[dict[str, Any] | None, bool]:
    """(why the step must wait, or None; whether the breaker must be asked first)."""
    now = time.time()
    paused = bool(job.paused or extra["portal_paused"])
    cooldown_until = extra["cooldown_until"]
    if cooldown_until is not None and cooldown_until > now:
        scope = extra.get("cooldown_scope", "portal")
        why = f"{scope} cooling down: {extra['cooldown_reason']}"
        return {
            "paused": paused,
            "wait_until": float(cooldown_until),
            "why": why,
            "now": now,
        }, False
    if paused:
        return {"paused": True, "wait_until": None, "why": "", "now": now}, False
    return None, not closed


def _leave(
    conn: sa.Connection,
    store: Store,
    machine_of: Any,
    job: JobRecord | None,
    leave: dict[str, Any],
    *,
    job_id: str | None = None,
) -> tuple[TransitionResult, JobRecord]:
    if job is None:
        job = store.jobs.lock(conn, str(job_id))
    if job.state != machine_of(job.adapter).engine.cooldown:
        return _result(job, job.state), job  # left already (a retried or recovered step)
    change = {"to_state": leave["to"], "actor": "engine", "reason": "cooldown over", "meta": {}}
    return _apply(conn, store, machine_of, job.id, [change], base_seq=None, job=job)


def open_escalation(
    conn: sa.Connection,
    store: Store,
    machine_of: Any,
    job_id: str,
    *,
    kind: str,
    step: str,
    reason: str,
    details: dict[str, Any],
) -> TransitionResult:
    """Open an escalation and move the job to its operator state, atomically."""
    job = store.jobs.lock(conn, job_id)
    machine: StateMachine = machine_of(job.adapter)
    if machine.is_terminal(job.state):
        return {"finished": job.state}
    escalation_id = store.jobs.open_escalation(
        conn, job, kind=kind, step=step, reason=reason, details=details
    )
    result = apply_transition(
        conn,
        store,
        machine_of,
        job_id,
        to_state=machine.engine.operator,
        actor="engine",
        reason=reason,
        meta={"escalation_id": escalation_id, "kind": kind, "step": step},
        updates={"error_class": kind, "reason": reason},
    )
    result["escalation_id"] = escalation_id
    return result


def resolve_escalation(
    conn: sa.Connection,
    store: Store,
    machine_of: Any,
    job_id: str,
    *,
    escalation_id: str,
    decision: dict[str, Any],
    to_state: str,
) -> TransitionResult:
    """Close the escalation with the operator's decision and move the job on, atomically."""
    actor = str(decision.get("actor") or "operator")
    store.jobs.resolve_escalation(conn, escalation_id, actor=actor, decision=decision)
    action = decision.get("action")
    terminal_reason = decision.get("reason") or f"operator chose {action}"
    return apply_transition(
        conn,
        store,
        machine_of,
        job_id,
        to_state=to_state,
        actor=actor,
        reason=str(terminal_reason),
        meta={"escalation_id": escalation_id, "decision": action},
        updates={"error_class": None, "reason": None}
        if action in ("retry", "resume")
        else {"reason": str(terminal_reason)},
    )
