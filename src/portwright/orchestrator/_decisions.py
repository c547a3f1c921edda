"""Operators' decisions on escalations: what applies to which kind, recorded atomically.

A decision is a compare-and-set on the escalation (`Store.escalations.decide`): of two
concurrent decisions exactly one is recorded and audited; the other raises
`DecisionConflictError` naming who decided what. The same decision by the same actor again
is not a conflict: the message to the job is sent again (idempotently), which is how a
decision survives a crash between its record and its delivery.

A claim is enforced: a claimed escalation is decided only by its claimer; another operator
first takes the claim over (audited).

A selector patch on a page-changed escalation is a new selector-map version; every other
undecided page-changed escalation of the same portal and adapter version parked on the same
selector key is retried with it too, each audited — unless someone else claimed it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbos import DBOS

from portwright.orchestrator._service import ConflictError
from portwright.sdk import PortwrightError
from portwright.store import AuditNote, EscalationRecord

if TYPE_CHECKING:
    from portwright.orchestrator._service import JobService

__all__ = [
    "BULK_CAP",
    "BulkOutcome",
    "DecisionConflictError",
    "DecisionOutcome",
    "NotApplicableError",
    "SelectionTooLargeError",
    "actions_for",
    "can_patch",
    "claim",
    "decide",
    "decide_many",
    "option_values",
]

# Per escalation kind, the decisions that make sense; any other kind gets DEFAULT_ACTIONS.
KIND_ACTIONS: dict[str, tuple[str, ...]] = {
    "page_changed": ("retry", "fail", "cancel"),  # + a selector patch (with retry)
    "rate_limited": ("retry", "fail", "cancel"),
    "blocked": ("retry", "fail", "cancel"),
}
DEFAULT_ACTIONS = ("resume", "retry", "fail", "cancel")
ALERT_ACTIONS = ("acknowledge",)  # an alert parks no job: acknowledging closes it
AUDIT_NAMES = {"resume": "resolve"}  # the console's word for "resume with input"


class NotApplicableError(PortwrightError, ValueError):
    """The decision does not apply to this escalation (HTTP 422, naming `field`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SelectionTooLargeError(PortwrightError, ValueError):
    """A bulk decision matched more escalations than it may decide at once (HTTP 422)."""

    def __init__(self, matched: int, cap: int) -> None:
        super().__init__(
            f"the filters select {matched} undecided escalations, more than {cap} at once: "
            "narrow them (portal, kind, selector_key, state)"
        )
        self.matched = matched
        self.cap = cap


class DecisionConflictError(ConflictError):
    """Someone decided first, or holds the claim (HTTP 409); `record` is the escalation now."""

    def __init__(self, message: str, record: EscalationRecord) -> None:
        super().__init__(message)
        self.record = record


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """The decided escalation; with a patch, the others retried and those left alone."""

    escalation: EscalationRecord
    selector_version: int | None = None
    also_retried: list[EscalationRecord] = field(default_factory=list)
    skipped: list[EscalationRecord] = field(default_factory=list)


def is_alert(esc: EscalationRecord) -> bool:
    return esc.step == "alert"


def actions_for(esc: EscalationRecord) -> tuple[str, ...]:
    """The decisions an operator may take on `esc` (empty once it is decided)."""
    if esc.status not in ("open", "claimed"):
        return ()
    if is_alert(esc):
        return ALERT_ACTIONS
    return KIND_ACTIONS.get(esc.kind, DEFAULT_ACTIONS)


def can_patch(esc: EscalationRecord) -> bool:
    """Whether a selector patch applies: an undecided page-changed escalation."""
    return esc.kind == "page_changed" and not is_alert(esc) and bool(actions_for(esc))


def option_values(esc: EscalationRecord) -> list[tuple[str, str]]:
    """The known answers of a question escalation, as (value, label) pairs."""
    return [
        (str(option[0]), str(option[1]))
        for option in esc.details.get("options") or []
        if isinstance(option, list | tuple) and len(option) == 2
    ]


def _who(esc: EscalationRecord) -> str:
    decision = esc.decision or {}
    if esc.status in ("decided", "resolved"):
        what = decision.get("action", "a decision")
        return f"{esc.resolved_by or decision.get('actor', 'someone')} already decided {what}"
    return f"{esc.claimed_by} holds the claim: take the claim over first"


def _before(esc: EscalationRecord) -> dict[str, Any]:
    return {"status": esc.status, "claimed_by": esc.claimed_by, "job_id": esc.job_id}


async def claim(
    service: JobService,
    escalation_id: str,
    *,
    actor: str,
    tenant_id: str | None = None,
    take_over: bool = False,
    reason: str = "",
) -> EscalationRecord:
    """Claim an open escalation, or (`take_over`) move another operator's claim to `actor`."""
    store = service.store
    esc = await asyncio.to_thread(store.jobs.escalation, escalation_id, tenant_id=tenant_id)
    name = "takeover_claim" if take_over else "claim"
    after = {"status": "claimed", "by": actor} | ({"from": esc.claimed_by} if take_over else {})
    note = AuditNote(actor, f"escalation.{name}", _before(esc), after, reason)
    outcome = await asyncio.to_thread(
        store.escalations.claim,
        escalation_id,
        actor=actor,
        note=note,
        tenant_id=tenant_id,
        take_over=take_over,
    )
    if not outcome.won:
        now = outcome.record
        if now.status == "claimed" and now.claimed_by == actor:
            return now  # claimed by the caller already
        if now.status == "claimed" and not take_over:
            raise DecisionConflictError(f"escalation {escalation_id}: {_who(now)}", now)
        raise DecisionConflictError(f"escalation {escalation_id} is {now.status}: {_who(now)}", now)
    return outcome.record


def _check(
    service: JobService,
    esc: EscalationRecord,
    action: str,
    value: Any,
    selectors: Mapping[str, str] | None,
) -> dict[str, str] | None:
    allowed = actions_for(esc) or (ALERT_ACTIONS if is_alert(esc) else DEFAULT_ACTIONS)
    if action not in allowed:
        raise NotApplicableError(
            "action",
            f"{action!r} does not apply to a {esc.kind} escalation (choose: {', '.join(allowed)})",
        )
    if action == "resume":
        options = option_values(esc)
        if options:
            given = "" if value is None else str(value).strip().lower()
            if not any(given in (v.lower(), label.lower()) for v, label in options):
                choices = ", ".join(v for v, _ in options)
                raise NotApplicableError("value", f"choose one of the known answers: {choices}")
    if not selectors:
        return None
    if esc.kind != "page_changed" or is_alert(esc):
        raise NotApplicableError(
            "selectors", f"a selector patch applies to page-changed escalations, not {esc.kind}"
        )
    if action != "retry":
        raise NotApplicableError("action", "a selector patch goes with the decision 'retry'")
    if esc.job_id is None:
        raise NotApplicableError("selectors", "a portal-level escalation has no job to retry")
    job = service.store.jobs.get(esc.job_id)
    known = service.rt.registry.get(job.adapter).selectors
    cleaned: dict[str, str] = {}
    for key, selector in selectors.items():
        if key not in known:
            raise NotApplicableError(
                "selectors", f"adapter {job.adapter} has no selector {key!r} (has: "
                f"{', '.join(sorted(known))})"
            )  # fmt: skip
        if not str(selector).strip():
            raise NotApplicableError("selectors", f"the new selector for {key!r} is empty")
        cleaned[key] = str(selector).strip()
    return cleaned


async def decide(
    service: JobService,
    escalation_id: str,
    action: str,
    *,
    actor: str,
    value: Any = None,
    reason: str = "",
    selectors: Mapping[str, str] | None = None,
    tenant_id: str | None = None,
    fix_all: bool = True,
) -> DecisionOutcome:
    """Record one decision atomically and hand it to the job; see the module docstring."""
    store = service.store
    esc = await asyncio.to_thread(store.jobs.escalation, escalation_id, tenant_id=tenant_id)
    patch = await asyncio.to_thread(_check, service, esc, action, value, selectors)
    decision: dict[str, Any] = {
        "action": action, "value": value if action == "resume" else None, "reason": reason,
        "actor": actor, "decided_at": time.time(),
    }  # fmt: skip
    if patch:
        decision["selectors"] = patch
    name = "patch" if patch else AUDIT_NAMES.get(action, action)
    after = {"decision": action, "value": decision["value"], "reason": reason}
    if patch:
        after["selectors"] = patch
    note = AuditNote(actor, f"escalation.{name}", _before(esc), after, reason)
    outcome = await asyncio.to_thread(
        store.escalations.decide,
        escalation_id,
        actor=actor,
        decision=decision,
        note=note,
        tenant_id=tenant_id,
        final=is_alert(esc),
    )
    if not outcome.won:
        now = outcome.record
        previous = now.decision or {}
        same = (
            now.status in ("decided", "resolved")
            and now.resolved_by == actor
            and previous.get("action") == action
            and previous.get("value") == decision["value"]
        )
        if not same:
            raise DecisionConflictError(f"escalation {escalation_id}: {_who(now)}", now)
        if now.status == "decided" and not is_alert(now):
            await _send(now, previous)  # the same decision again: deliver it (idempotent)
        return DecisionOutcome(now)
    version = None
    retried: list[EscalationRecord] = []
    skipped: list[EscalationRecord] = []
    if patch and esc.job_id is not None:
        job = await asyncio.to_thread(store.jobs.get, esc.job_id)
        record = await asyncio.to_thread(
            service.patch_selectors,
            job.adapter,
            patch,
            actor=actor,
            reason=reason or f"fix for {escalation_id}",
        )
        version = record.version
    if not is_alert(esc):
        await _send(outcome.record, decision)
    if patch and fix_all:
        retried, skipped = await _retry_parked(
            service, esc, patch, version, actor=actor, reason=reason, tenant_id=tenant_id
        )
    return DecisionOutcome(outcome.record, version, retried, skipped)


BULK_ACTIONS = ("retry", "fail", "cancel")
BULK_CAP = 200  # escalations one bulk decision may decide


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What a bulk decision did: each escalation decided, and each left alone with why."""

    matched: int
    decided: list[EscalationRecord] = field(default_factory=list)
    skipped: list[tuple[EscalationRecord, str]] = field(default_factory=list)


async def decide_many(
    service: JobService,
    action: str,
    *,
    actor: str,
    reason: str = "",
    tenant_id: str | None,
    portal: str | None = None,
    kind: str | None = None,
    selector_key: str | None = None,
    state: str | None = None,
    cap: int = BULK_CAP,
) -> BulkOutcome:
    """One decision (retry, fail or cancel) on every undecided escalation the filters
    select (open or claimed; `state` narrows to one), of `tenant_id` when given. Each is
    `decide`'s own compare-and-set with its own audit row: one decided meanwhile by someone
    else, claimed by another operator, or of a kind the action does not apply to is skipped
    with the reason. Refuses (`SelectionTooLargeError`) a selection larger than `cap`,
    deciding nothing."""
    if action not in BULK_ACTIONS:
        raise NotApplicableError("action", f"one of {', '.join(BULK_ACTIONS)}, not {action!r}")
    if state not in (None, "open", "claimed"):
        raise NotApplicableError("state", "a bulk decision selects open or claimed escalations")
    store = service.store
    selected: list[EscalationRecord] = []
    for status in (state,) if state else ("open", "claimed"):
        page = await asyncio.to_thread(
            store.escalations.find, tenant_id=tenant_id, state=status, kind=kind, portal=portal,
            selector_key=selector_key, limit=cap, newest_first=False,
        )  # fmt: skip
        if page.total + len(selected) > cap:
            raise SelectionTooLargeError(page.total + len(selected), cap)
        selected += page.rows
    selected = [e for e in selected if not is_alert(e)]  # alerts park nothing: acknowledge them
    outcome = BulkOutcome(matched=len(selected))
    for esc in sorted(selected, key=lambda e: e.id):
        try:
            done = await decide(
                service, esc.id, action, actor=actor, reason=reason or f"bulk {action}",
                tenant_id=tenant_id, fix_all=False,
            )  # fmt: skip
        except (DecisionConflictError, NotApplicableError) as exc:
            outcome.skipped.append((esc, str(exc)))
            continue
        outcome.decided.append(done.escalation)
    return outcome


def decision_message(esc: EscalationRecord, decision: Mapping[str, Any]) -> dict[str, Any]:
    """What the parked job receives (topic "operator"), from a recorded decision."""
    return {
        "escalation_id": esc.id,
        "action": decision.get("action"),
        "value": decision.get("value"),
        "actor": decision.get("actor") or esc.resolved_by,
        "reason": decision.get("reason", ""),
        # kept on the escalation when the job resolves it: what the patch changed
        **{k: decision[k] for k in ("selectors", "by_patch", "decided_at") if k in decision},
    }


def redeliver(esc: EscalationRecord) -> None:
    """Send a recorded decision again (sync, for the janitor); DBOS delivers a message with
    the same idempotency key once, so a decision already delivered is not sent twice."""
    if esc.job_id is None:
        return  # a portal-level escalation: no job waits on it
    DBOS.send(
        esc.job_id,
        decision_message(esc, esc.decision or {}),
        topic="operator",
        idempotency_key=f"decision:{esc.id}",
    )


async def _send(esc: EscalationRecord, decision: Mapping[str, Any]) -> None:
    if esc.job_id is None:
        return  # a portal-level escalation: no job waits on it
    await DBOS.send_async(
        esc.job_id,
        decision_message(esc, decision),
        topic="operator",
        idempotency_key=f"decision:{esc.id}",
    )


async def _retry_parked(
    service: JobService,
    origin: EscalationRecord,
    patch: dict[str, str],
    version: int | None,
    *,
    actor: str,
    reason: str,
    tenant_id: str | None,
) -> tuple[list[EscalationRecord], list[EscalationRecord]]:
    """Retry every other job parked on a patched selector key of the same portal and
    adapter version (of `tenant_id` only, when the patcher is limited to one tenant); one
    audited decision each. Another operator's claim is respected."""
    store = service.store
    if origin.job_id is None:
        return [], []
    job = await asyncio.to_thread(store.jobs.get, origin.job_id)
    retried: list[EscalationRecord] = []
    skipped: list[EscalationRecord] = []
    seen = {origin.id}
    for key in patch:
        parked = await asyncio.to_thread(
            store.escalations.parked_on_selector,
            portal=origin.portal,
            adapter=job.adapter,
            adapter_version=job.adapter_version,
            selector_key=key,
            tenant_id=tenant_id,
        )
        for other in parked:
            if other.id in seen:
                continue
            seen.add(other.id)
            if other.status == "claimed" and other.claimed_by != actor:
                skipped.append(other)
                continue
            why = reason or f"selector fix v{version} from {origin.id}"
            decision = {
                "action": "retry", "value": None, "reason": why, "actor": actor,
                "decided_at": time.time(), "selectors": patch, "by_patch": origin.id,
            }  # fmt: skip
            after = {"decision": "retry", "selectors": patch, "by_patch": origin.id,
                     "version": version}  # fmt: skip
            note = AuditNote(actor, "escalation.retry", _before(other), after, why)
            won = await asyncio.to_thread(
                store.escalations.decide,
                other.id,
                actor=actor,
                decision=decision,
                note=note,
                tenant_id=tenant_id,
            )
            if not won.won:
                skipped.append(won.record)
                continue
            await _send(won.record, decision)
            retried.append(won.record)
    return retried, skipped
