"""Rollouts: which adapter version new jobs start on, shadow runs, promotion and rollback.

Per portal (and optionally per tenant) a rollout names the live version, a canary (for a
percentage of new jobs, or for named tenants) and a shadow. A job is pinned to the version
it started on (`jobs.adapter_version`, carried in its workflow's snapshot) to its end; a
rollout change only steers jobs that start after it.

- **Shadow runs.** When a job of the live version finishes a step its adapter lists in
  `read_only_steps`, the shadow version's function of that name runs on the same inputs in
  a `ShadowStepContext`: `sc.http` refuses every method but GET/HEAD/OPTIONS before it
  leaves, and the durable or stateful calls (`remember`, `attach`, `observe`, captchas,
  the browser, the ladder) are refused too. The outputs are compared (as JSON, or within
  the live version's `shadow_tolerance` for the step: ignored keys, numeric tolerance) and the
  outcome recorded: agree, differ, error, refused. With `promote_after` N, the shadow
  becomes live by itself once N jobs compared and every comparison agreed (audited).
- **Automatic rollback.** The janitor's round (`watch`) compares each canary's break rate
  (jobs failed or escalated for a page change or an adapter error) with the live
  version's over the rollout's window; above `rollback_margin` (with at least
  `rollback_min_jobs` canary jobs judged) the canary is removed, audited, counted in
  `portwright_rollout_rollbacks`, and staff are alerted on the canary's latest broken job.
  Jobs already started keep their version.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from portwright.observability import PROCESS
from portwright.orchestrator._step_context import StepContextImpl
from portwright.sdk import (
    Adapter,
    JobError,
    PageChangedError,
    PermanentError,
    ShadowTolerance,
    outputs_agree,
)
from portwright.store import AuditNote, JobRecord, NewJob, ProbeRecord, RolloutRecord

if TYPE_CHECKING:
    from playwright.async_api import Page as BrowserPage

    from portwright.engines.http import CookieRow
    from portwright.engines.ladder import FetchResult
    from portwright.orchestrator._runtime import Runtime

__all__ = ["RolloutChange", "Rollouts", "ShadowStepContext", "ShadowWriteRefusedError"]

log = structlog.get_logger("portwright.rollouts")

CACHE_S = 1.0
SHADOW_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 60.0
PROBE_DEGRADED = "probe: "  # the prefix of a degraded reason a probe set (and clears)
PROBE_ACTOR = "probe"  # who resolves a portal escalation when the probe passes again
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTO = "rollout:auto"

AdapterClass = type[Adapter]  # type: ignore[type-arg]


class ShadowWriteRefusedError(PermanentError):
    """A shadow run tried something with a side effect; it was refused before it left."""


def in_canary(record: RolloutRecord, tenant_id: str, job_id: str) -> bool:
    """Whether a new job (`job_id` of `tenant_id`) starts on the rollout's canary: its
    tenant is named, or the job's id falls in the percentage (stable per id)."""
    if not record.canary:
        return False
    if tenant_id in record.canary_tenants:
        return True
    bucket = int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % 100
    return bucket < record.canary_percent


@dataclass(frozen=True, slots=True)
class RolloutChange:
    """What an operator sets on a portal's (or a tenant's) rollout. `None` fields keep
    their current value (or the default, for a new rollout)."""

    live: str | None = None
    canary: str | None = None
    canary_percent: int | None = None
    canary_tenants: Sequence[str] | None = None
    shadow: str | None = None
    promote_after: int | None = None
    rollback_margin: float | None = None
    rollback_window_s: float | None = None
    rollback_min_jobs: int | None = None
    clear_canary: bool = False
    clear_shadow: bool = False


_DEFAULTS: dict[str, Any] = {
    "canary": None,
    "canary_percent": 0,
    "canary_tenants": [],
    "shadow": None,
    "promote_after": 0,
    "rollback_margin": 0.2,
    "rollback_window_s": 3600.0,
    "rollback_min_jobs": 5,
}


class Rollouts:
    """The runtime's rollout logic; the API, console and CLI reach it through JobService."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._cache: dict[tuple[str, str], tuple[float, RolloutRecord | None]] = {}
        self._lock = threading.Lock()

    # -- reading (cached a second: asked on every submit and every read-only step) -------

    def for_tenant(self, portal: str, tenant_id: str) -> RolloutRecord | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get((portal, tenant_id))
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        record = self._rt.store.rollouts.for_tenant(portal, tenant_id)
        with self._lock:
            self._cache[(portal, tenant_id)] = (now, record)
        return record

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def choose(self, adapter: str, tenant_id: str, job_id: str) -> AdapterClass:
        """The adapter version a new job starts on: the rollout's canary or live version,
        else the registry's default. A version the rollout names but this process lacks
        falls back to live, then to the default (logged: the rollout needs attention)."""
        registry = self._rt.registry
        default = registry.get(adapter)
        if len(registry.versions(adapter)) == 1:
            return default  # one version installed: nothing to choose (and nothing to read)
        record = self.for_tenant(default.portal_name(), tenant_id)
        if record is None or record.adapter != adapter:
            return default
        wanted = record.canary if in_canary(record, tenant_id, job_id) else record.live
        for version in (wanted, record.live):
            if version and registry.has(adapter, version):
                return registry.get(adapter, version)
        log.warning("rollout names versions not installed here", portal=record.portal)
        return default

    # -- changing ------------------------------------------------------------------------

    def _check_versions(self, adapter: str, setting: Mapping[str, Any]) -> None:
        registry = self._rt.registry
        installed = registry.versions(adapter)
        for field in ("live", "canary", "shadow"):
            version = setting.get(field)
            if version is not None and version not in installed:
                raise ValueError(
                    f"{field}: adapter {adapter!r} has no version {version!r} installed "
                    f"(installed: {', '.join(installed)})"
                )
        if not 0 <= int(setting["canary_percent"]) <= 100:
            raise ValueError("canary_percent: must be between 0 and 100")
        if int(setting["promote_after"]) < 0:
            raise ValueError("promote_after: must be 0 (manual) or more")
        if not 0.0 <= float(setting["rollback_margin"]) <= 1.0:
            raise ValueError("rollback_margin: must be between 0 and 1")
        if float(setting["rollback_window_s"]) <= 0:
            raise ValueError("rollback_window_s: must be positive")
        if int(setting["rollback_min_jobs"]) < 1:
            raise ValueError("rollback_min_jobs: must be 1 or more")
        for a, b in (("canary", "live"), ("shadow", "live")):
            if setting.get(a) is not None and setting.get(a) == setting.get(b):
                raise ValueError(f"{a}: version {setting[a]!r} is already the live version")

    def adapter_of(self, portal: str) -> str:
        """The adapter serving `portal` (LookupError naming the known portals if none)."""
        registry = self._rt.registry
        for adapter in registry.all():
            if adapter.portal_name() == portal:
                return adapter.name
        known = sorted({a.portal_name() for a in registry.all()})
        raise LookupError(f"no adapter serves portal {portal!r} (portals: {', '.join(known)})")

    def set(
        self, portal: str, change: RolloutChange, *, actor: str, reason: str = "", scope: str = ""
    ) -> RolloutRecord:
        """Create or change the rollout of `portal` (for every tenant, or `scope`'s)."""
        adapter = self.adapter_of(portal)
        current = self._rt.store.rollouts.get(portal, scope)
        base = (
            current.setting()
            if current is not None
            else {"adapter": adapter, "live": self._rt.registry.default_version(adapter)}
            | _DEFAULTS
        )
        given = {k: v for k, v in vars_of(change).items() if v is not None}
        setting = {**base, **given, "adapter": adapter}
        if change.clear_canary:
            setting["canary"], setting["canary_percent"], setting["canary_tenants"] = None, 0, []
        if change.clear_shadow:
            setting["shadow"] = None
        setting["canary_tenants"] = sorted({str(t) for t in setting["canary_tenants"]})
        self._check_versions(adapter, setting)
        written = self._rt.store.rollouts.put(
            portal, scope, setting, actor=actor, action="rollout.set", reason=reason
        )
        assert written is not None  # unconditional
        self.forget()
        return written[1]

    def promote(
        self, portal: str, *, actor: str, reason: str = "", scope: str = "", which: str = ""
    ) -> RolloutRecord:
        """Make the canary (or, without one, the shadow) the live version; audited."""
        current = self._rt.store.rollouts.get(portal, scope)
        if current is None:
            raise LookupError(f"portal {portal!r} has no rollout to promote")
        which = which or ("canary" if current.canary else "shadow")
        version = current.canary if which == "canary" else current.shadow
        if which not in ("canary", "shadow") or version is None:
            raise ValueError(f"which: portal {portal!r} has no {which or 'canary or shadow'}")
        setting = current.setting() | {"live": version}
        if which == "canary":
            setting |= {"canary": None, "canary_percent": 0, "canary_tenants": []}
        else:
            setting["shadow"] = None
        written = self._rt.store.rollouts.put(
            portal, scope, setting, actor=actor, action="rollout.promote", reason=reason,
            expect={which: version},
        )  # fmt: skip
        if written is None:
            raise ValueError(f"{which}: the rollout of {portal!r} changed meanwhile; retry")
        self.forget()
        log.info("version promoted", portal=portal, scope=scope, version=version, actor=actor)
        return written[1]

    def rollback(
        self, portal: str, *, actor: str, reason: str = "", scope: str = ""
    ) -> RolloutRecord:
        """Remove the canary: new jobs start on the live version (started ones keep theirs)."""
        current = self._rt.store.rollouts.get(portal, scope)
        if current is None or current.canary is None:
            raise ValueError(f"canary: portal {portal!r} has no canary to roll back")
        written = self._rollback(current, actor=actor, reason=reason)
        if written is None:
            raise ValueError(f"canary: the rollout of {portal!r} changed meanwhile; retry")
        return written

    def _rollback(self, current: RolloutRecord, *, actor: str, reason: str) -> RolloutRecord | None:
        setting = current.setting() | {"canary": None, "canary_percent": 0, "canary_tenants": []}
        written = self._rt.store.rollouts.put(
            current.portal, current.scope, setting, actor=actor, action="rollout.rollback",
            reason=reason, expect={"canary": current.canary},
        )  # fmt: skip
        self.forget()
        return None if written is None else written[1]

    def describe(self, portal: str, scope: str = "") -> dict[str, Any]:
        """A portal's rollout as the API and console show it: the setting (or the default
        when none is set), the installed versions, break rates and shadow agreement."""
        adapter = self.adapter_of(portal)
        record = self._rt.store.rollouts.get(portal, scope)
        view: dict[str, Any] = {
            "portal": portal,
            "tenant": scope or None,
            "installed": self._rt.registry.versions(adapter),
            "updated_by": "",
            "updated_at": None,
            "reason": "",
        }
        if record is None:
            view |= {"adapter": adapter, "live": self._rt.registry.default_version(adapter)}
            view |= _DEFAULTS | {"probe": self.probe_view(portal)}
            return view
        view |= record.setting() | {
            "updated_by": record.updated_by,
            "updated_at": record.updated_at,
            "reason": record.reason,
            "break_rates": {k: list(v) for k, v in self.break_rates(record).items()},
        }
        view["probe"] = self.probe_view(portal)
        view["shadow_agreement"] = [
            {
                "step": s.step,
                "shadow_version": s.shadow_version,
                "agree": s.agree,
                "differ": s.differ,
                "error": s.error,
                "refused": s.refused,
                "agreement": s.agreement,
            }
            for s in self._rt.store.rollouts.shadow_stats(portal)
        ]
        return view

    # -- watching (the janitor's round) --------------------------------------------------

    def watch(self) -> list[str]:
        """Roll back every canary whose break rate exceeds the live version's by more than
        its rollout's margin over its window; the portals rolled back."""
        rolled = []
        for record in self._rt.store.rollouts.all():
            if record.canary is None:
                continue
            if self._should_roll_back(record):
                rolled.append(record.portal)
        return rolled

    def break_rates(self, record: RolloutRecord) -> dict[str, tuple[int, int]]:
        """(broken, judged) of the live and canary versions over the rollout's window."""
        since = time.time() - record.rollback_window_s
        repo = self._rt.store.rollouts
        rates = {"live": repo.break_rate(record.portal, record.adapter, record.live, since=since)}
        if record.canary:
            rates["canary"] = repo.break_rate(
                record.portal, record.adapter, record.canary, since=since
            )
        return rates

    def _should_roll_back(self, record: RolloutRecord) -> bool:
        rates = self.break_rates(record)
        broken, judged = rates["canary"]
        if judged < record.rollback_min_jobs:
            return False
        live_broken, live_judged = rates["live"]
        canary_rate = broken / judged
        live_rate = live_broken / live_judged if live_judged else 0.0
        if canary_rate - live_rate <= record.rollback_margin:
            return False
        reason = (
            f"canary {record.canary} broke on {broken}/{judged} jobs ({canary_rate:.0%}) against "
            f"{live_rate:.0%} for live {record.live} (margin {record.rollback_margin:.0%}, "
            f"window {record.rollback_window_s:g}s)"
        )
        if self._rollback(record, actor=AUTO, reason=reason) is None:
            return False  # another worker rolled it back (or an operator changed it) first
        PROCESS.rolled_back(record.portal)
        log.warning("canary rolled back", portal=record.portal, scope=record.scope, why=reason)
        since = time.time() - record.rollback_window_s
        assert record.canary is not None
        job_id = self._rt.store.rollouts.last_broken_job(record.portal, record.canary, since=since)
        if job_id is not None:
            job = self._rt.store.jobs.get(job_id)
            self._rt.store.jobs.open_alert(
                job,
                kind="rollback",
                reason=f"rolled back automatically: {reason}",
                details={"portal": record.portal, "canary": record.canary, "live": record.live},
            )
        self._retry_on_live(record, record.canary)
        return True

    def _retry_on_live(self, record: RolloutRecord, canary: str) -> dict[str, str]:
        """The canary's jobs parked by a break start again on live, where the canary's
        adapter allows it (`retry_on_rollback`): each parked job is cancelled (an audited
        decision on its escalation) and a new job `<id>-rb` with the same input is
        accepted on the live version. {old job id: new job id}."""
        from portwright.orchestrator._decisions import redeliver

        rt = self._rt
        name = record.adapter
        if not rt.registry.has(name, canary) or not rt.registry.has(name, record.live):
            return {}
        if not rt.registry.get(name, canary).retry_on_rollback:
            return {}
        live = rt.registry.get(name, record.live)
        retried: dict[str, str] = {}
        for esc_id, job_id in rt.store.rollouts.parked_by_break(record.portal, name, canary):
            job = rt.store.jobs.get(job_id)
            new_id = f"{job.id}-rb"
            why = f"canary {canary} rolled back; started again on {record.live} as {new_id}"
            decision = {"action": "cancel", "value": None, "reason": why, "actor": AUTO,
                        "decided_at": time.time()}  # fmt: skip
            note = AuditNote(AUTO, "escalation.cancel", {"kind": "rollback"}, decision, why)
            outcome = rt.store.escalations.decide(esc_id, actor=AUTO, decision=decision, note=note)
            if not outcome.won:
                continue  # an operator got there first: theirs to decide
            new = NewJob(
                job_id=new_id, tenant_id=job.tenant_id, adapter=name,
                adapter_version=live.version, portal=job.portal,
                state=live.machine.initial, status=live.machine.status_of(live.machine.initial),
                input=job.input, lock_key=job.lock_key, priority=job.priority, actor=AUTO,
                reason=f"retry of {job.id} after canary {canary} was rolled back",
                parent_id=job.parent_id, item_key=job.item_key,
            )  # fmt: skip
            with rt.store.engine.begin() as conn:
                records, _ = rt.store.jobs.insert_many(conn, [new])
            redeliver(outcome.record)  # the parked job ends cancelled
            rt.enqueue_many(records)
            retried[job.id] = new_id
        if retried:
            log.warning("canary jobs retried on live", portal=record.portal, jobs=retried)
        return retried

    # -- shadow runs ---------------------------------------------------------------------

    async def run_shadow(
        self,
        live: AdapterClass,
        job: JobRecord,
        step: str,
        args: tuple[Any, ...],
        kw: dict[str, Any],
        value: Any,
        cookies: list[CookieRow],
    ) -> str | None:
        """Run the shadow version's `step` beside the live one's (already done, `value`),
        record how they compare; the outcome, or None when no shadow runs. Never raises."""
        rt = self._rt
        if len(rt.registry.versions(live.name)) == 1:
            return None  # no other version installed to run in shadow
        try:
            record = await asyncio.to_thread(self.for_tenant, job.portal, job.tenant_id)
            version = record.shadow if record is not None and record.adapter == live.name else None
            if (
                version is None
                or version == live.version
                or not rt.registry.has(live.name, version)
            ):
                return None
            shadow = rt.registry.get(live.name, version)
            fn = shadow.read_only_steps.get(step)
            if fn is None:
                outcome, detail = "error", f"version {version} declares no read-only step {step!r}"
            else:
                selectors = await asyncio.to_thread(rt.selectors_for, shadow)
                sc = ShadowStepContext(
                    rt, job, step=step, attempt=1, cookies=cookies, selectors=selectors
                )
                tolerance = live.shadow_tolerance.get(step)
                outcome, detail = await self._compare(sc, fn, args, kw, value, tolerance)
            await asyncio.to_thread(
                rt.store.rollouts.record_shadow,
                portal=job.portal, adapter=live.name, step=step, job_id=job.id,
                live_version=live.version, shadow_version=version, outcome=outcome,
                detail=detail,
            )  # fmt: skip
            PROCESS.shadow(job.portal, step, outcome)
            if record is not None and record.promote_after > 0:
                await asyncio.to_thread(self._maybe_promote, record, version)
        except Exception:  # a shadow never fails the live job
            log.exception("shadow run failed", job_id=job.id, step=step)
            return None
        return outcome

    @staticmethod
    async def _compare(
        sc: ShadowStepContext,
        fn: Any,
        args: tuple[Any, ...],
        kw: dict[str, Any],
        value: Any,
        tolerance: ShadowTolerance | None = None,
    ) -> tuple[str, str]:
        try:
            shadow_value = await asyncio.wait_for(fn(sc, *args, **kw), SHADOW_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - every failure is an outcome
            if sc.refused_writes:
                return "refused", "; ".join(sc.refused_writes)
            return "error", f"{type(exc).__name__}: {exc}"
        finally:
            await sc.aclose()
        if sc.refused_writes:
            return "refused", "; ".join(sc.refused_writes)
        if outputs_agree(value, shadow_value, tolerance):
            return "agree", ""
        return "differ", f"live={_canonical(value)[:900]} shadow={_canonical(shadow_value)[:900]}"

    def _maybe_promote(self, record: RolloutRecord, version: str) -> None:
        """Promote the shadow once `promote_after` jobs compared since it was set and all
        agreed (a single disagreement holds it back until an operator decides)."""
        agreed, other = self._rt.store.rollouts.shadow_jobs(
            record.portal, version, since=record.updated_at
        )
        if other or agreed < record.promote_after:
            return
        # (changed meanwhile: someone else promoted it, or an operator moved it)
        with contextlib.suppress(LookupError, ValueError):
            self.promote(
                record.portal, actor=AUTO, scope=record.scope, which="shadow",
                reason=f"shadow {version} agreed with live {record.live} on {agreed} jobs",
            )  # fmt: skip

    # -- synthetic probes ----------------------------------------------------------------

    def set_probe(
        self, portal: str, input: Mapping[str, Any], *, every_s: float, enabled: bool, actor: str
    ) -> ProbeRecord:
        """Configure `portal`'s probe: the live version's `probe` on `input` every `every_s`
        (the input is checked against the adapter's input model now), run by its DBOS
        schedule (written here; deleted when the probe is disabled)."""
        from portwright.orchestrator._probes import apply_probe_schedule

        adapter = self._rt.registry.get(self.adapter_of(portal))
        if not 1.0 <= every_s <= 86400.0:
            raise ValueError("every_s: must be between 1 and 86400 seconds")
        model = adapter.input_model.model_validate(dict(input))  # ValidationError names fields
        record = self._rt.store.rollouts.set_probe(
            portal, input=model.model_dump(mode="json"), every_s=every_s, enabled=enabled,
            actor=actor,
        )  # fmt: skip
        apply_probe_schedule(portal, every_s=every_s, enabled=enabled)
        return record

    def probe_config(self, portal: str) -> ProbeRecord | None:
        return self._rt.store.rollouts.probe(portal)

    def probe_view(self, portal: str) -> dict[str, Any] | None:
        """The portal's probe as the API and console show it (not its input)."""
        probe = self._rt.store.rollouts.probe(portal)
        if probe is None:
            return None
        return {
            "every_s": probe.every_s,
            "enabled": probe.enabled,
            "last_at": probe.last_at,
            "last_version": probe.last_version,
            "last_outcome": probe.last_outcome,
            "last_detail": probe.last_detail,
            "last_ok_at": probe.last_ok_at,
            "failures": probe.failures,
        }

    async def scheduled_probe(self, portal: str) -> str:
        """One tick of the portal's probe schedule: the probe, unless it was disabled or
        removed since the schedule fired ("disabled")."""
        config = await asyncio.to_thread(self._rt.store.rollouts.probe, portal)
        if config is None or not config.enabled:
            return "disabled"
        return await self.probe(portal)

    async def probe(self, portal: str) -> str:
        """Run `portal`'s probe once now; its outcome (ok, page_changed, no_probe,
        adapter_error, or the error class of a portal failure). A page change marks the
        portal degraded (on /status and the console) and is logged and counted; the next
        good probe clears what a probe set."""
        rt = self._rt
        config = await asyncio.to_thread(rt.store.rollouts.probe, portal)
        if config is None:
            raise LookupError(f"portal {portal!r} has no probe configured")
        name = self.adapter_of(portal)
        record = await asyncio.to_thread(rt.store.rollouts.get, portal)
        live = record.live if record is not None and rt.registry.has(name, record.live) else None
        adapter = rt.registry.get(name, live)
        outcome, detail = await self._probe_once(adapter, config)
        # The portal's health first, then the probe's record (whoever reads the outcome
        # finds the portal already marked).
        state = await asyncio.to_thread(rt.store.portals.get, portal)
        if outcome == "page_changed":
            log.warning("probe found a page change", portal=portal, detail=detail)
            await asyncio.to_thread(
                rt.store.portals.set_degraded, portal, reason=f"{PROBE_DEGRADED}{detail}"
            )
            await asyncio.to_thread(self._escalate, config, adapter.version, detail)
        elif outcome == "ok":
            if (state.degraded_reason or "").startswith(PROBE_DEGRADED):
                await asyncio.to_thread(rt.store.portals.set_degraded, portal, reason=None)
            closed = await asyncio.to_thread(
                rt.store.escalations.resolve_portal, portal, kind="page_changed",
                actor=PROBE_ACTOR, reason=f"the probe passed again on v{adapter.version}",
            )  # fmt: skip
            if closed:
                log.info("probe passed again: escalation resolved", portal=portal, ids=closed)
        await asyncio.to_thread(
            rt.store.rollouts.record_probe, portal, version=adapter.version, outcome=outcome,
            detail=detail,
        )  # fmt: skip
        PROCESS.probed(portal, outcome)
        return outcome

    def _escalate(self, config: ProbeRecord, version: str, detail: str) -> None:
        """The portal-level escalation of a DOM shift: one per portal while it lasts (each
        later tick counts a sighting on it), none again in the same failure streak once an
        operator closed it."""
        since = config.last_ok_at or 0.0
        raised = self._rt.store.escalations.raise_portal(
            config.portal, kind="page_changed",
            reason=f"the probe of {config.portal} found the page changed: {detail}",
            details={"detail": detail, "adapter_version": version, "source": "probe"},
            since=since,
        )  # fmt: skip
        if raised is not None and raised[1]:
            log.warning("probe raised a portal escalation", portal=config.portal, id=raised[0])

    async def _probe_once(self, adapter: AdapterClass, config: ProbeRecord) -> tuple[str, str]:
        rt = self._rt
        now = time.time()
        job = JobRecord(
            id=f"probe-{config.portal}", tenant_id="", adapter=adapter.name,
            adapter_version=adapter.version, portal=config.portal, state="PROBE",
            status="running", input={}, output=None, error_class=None, reason=None,
            waiting_for=None, lock_key=None, priority=0, paused=False, cancel_requested=False,
            attempts=0, seq=0, created_at=now, updated_at=now, finished_at=None,
        )  # fmt: skip
        try:
            data = adapter.input_model.model_validate(config.input)
            selectors = await asyncio.to_thread(rt.selectors_for, adapter)
        except Exception as exc:  # noqa: BLE001 - a probe reports, never raises
            return "adapter_error", f"{type(exc).__name__}: {exc}"
        sc = ShadowStepContext(rt, job, step="probe", attempt=1, cookies=[], selectors=selectors)
        try:
            await asyncio.wait_for(adapter().probe(sc, data), PROBE_TIMEOUT_S)
        except PageChangedError as exc:
            return "page_changed", exc.message
        except NotImplementedError as exc:
            return "no_probe", str(exc)
        except JobError as exc:
            return exc.error_class, exc.message
        except Exception as exc:  # noqa: BLE001 - every failure is an outcome
            return "adapter_error", f"{type(exc).__name__}: {exc}"
        finally:
            await sc.aclose()
        return "ok", ""


def vars_of(change: RolloutChange) -> dict[str, Any]:
    return {
        "live": change.live,
        "canary": change.canary,
        "canary_percent": change.canary_percent,
        "canary_tenants": list(change.canary_tenants)
        if change.canary_tenants is not None
        else None,
        "shadow": change.shadow,
        "promote_after": change.promote_after,
        "rollback_margin": change.rollback_margin,
        "rollback_window_s": change.rollback_window_s,
        "rollback_min_jobs": change.rollback_min_jobs,
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class ShadowStepContext(StepContextImpl):
    """A step context that can only read: `http` refuses every unsafe method before it
    leaves, and every call with a side effect (notes, evidence, observations, captchas,
    the browser, the ladder) is refused. Refusals are listed in `refused_writes`."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.refused_writes: list[str] = []

    def _refuse(self, what: str) -> ShadowWriteRefusedError:
        self.refused_writes.append(what)
        return ShadowWriteRefusedError(f"a shadow run may not {what}")

    @property
    def http(self) -> httpx.AsyncClient:
        client = super().http
        hooks = client.event_hooks
        if self._refuse_unsafe not in hooks["request"]:
            hooks["request"] = [self._refuse_unsafe, *hooks["request"]]
            client.event_hooks = hooks
        return client

    async def _refuse_unsafe(self, request: httpx.Request) -> None:
        if request.method.upper() not in SAFE_METHODS:
            raise self._refuse(f"{request.method} {request.url}")

    async def remember(self, key: str, value: Any) -> None:
        raise self._refuse(f"remember {key!r}")

    async def attach(self, kind: str, data: bytes | str, *, content_type: str, **meta: Any) -> str:
        raise self._refuse(f"attach {kind!r}")

    async def observe(self, kind: str, subject: str, value: Mapping[str, Any]) -> None:
        raise self._refuse(f"observe {kind!r}")

    async def solve_captcha(self, *, sitekey: str, url: str) -> str:
        raise self._refuse("solve a captcha")

    async def browser(self, *, hardened: bool = False, profile: str | None = None) -> BrowserPage:
        raise self._refuse("open a browser")

    async def fetch(self, url: str, **options: Any) -> FetchResult:
        raise self._refuse(f"fetch {url} through the engine ladder")

    async def aclose(self) -> None:
        if self._client is not None:  # no http-log evidence: a shadow writes nothing
            await self._client.aclose()
