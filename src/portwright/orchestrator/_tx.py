"""Transactional pieces: a state change, its audit event and (inside a workflow) the DBOS
checkpoint commit together, so a crash can neither lose nor repeat a transition."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portwright.sdk import StateMachine
from portwright.store import JobRecord, StaleStateError, Store

__all__ = ["TransitionResult", "apply_transition", "open_escalation", "resolve_escalation"]

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
    for _ in range(5):
        job: JobRecord = store.jobs.lock(conn, job_id)
        machine: StateMachine = machine_of(job.adapter)
        if machine.is_terminal(job.state):
            return {"finished": job.state}
        target = job.state if kind == "control" else to_state
        if kind == "transition" and not machine.allows(job.state, target):
            return {"illegal": True, "from": job.state, "to": target}
        values = {"waiting_for": None, **(updates or {})} if kind == "transition" else updates
        waiting = (values or {}).get("waiting_for", job.waiting_for if kind == "control" else None)
        status = "waiting" if waiting else machine.status_of(target)
        try:
            new = store.jobs.write_event(
                conn,
                job,
                kind=kind,
                actor=actor,
                to_state=target,
                status=status,
                reason=reason,
                meta=meta,
                updates=values,
                terminal=machine.is_terminal(target),
            )
        except StaleStateError:
            continue  # someone else moved the job between our read and write: re-read
        _to_outbox(conn, store, job, new, kind=kind, actor=actor, reason=reason)
        return {"state": new.state, "seq": new.seq, "status": new.status, "from": job.state}
    raise StaleStateError(f"job {job_id} kept changing under us")


def _to_outbox(
    conn: sa.Connection,
    store: Store,
    before: JobRecord,
    after: JobRecord,
    *,
    kind: str,
    actor: str,
    reason: str,
) -> None:
    """The job event's outbox row, in the same transaction (delivery relays it later)."""
    store.outbox.add(
        conn,
        event_id=f"{after.id}:{after.seq}",
        topic=f"job.{after.status}",
        tenant_id=after.tenant_id,
        subject=after.id,
        platform=after.portal,
        payload={
            "job_id": after.id,
            "adapter": after.adapter,
            "portal": after.portal,
            "seq": after.seq,
            "kind": kind,
            "from": before.state,
            "to": after.state,
            "status": after.status,
            "actor": actor,
            "reason": reason,
        },
    )


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
