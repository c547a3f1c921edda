"""The job driver: what `Adapter.run` sees as its `Job`, implemented on DBOS.

Everything here runs inside the job's DBOS workflow, so it must be
deterministic: every read of the outside world (time, the database, the
portal) happens in a checkpointed step, and every state change in a
transactional step that also writes its audit event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import structlog
from dbos import DBOS, StepOptions
from pydantic import BaseModel

from portwright.engines.http import CookieRow, translate_exception
from portwright.observability import PROCESS, SpanHandle, span
from portwright.orchestrator._backoff import backoff_delay
from portwright.orchestrator._step_context import StepContextImpl
from portwright.orchestrator._tx import apply_transition, open_escalation, resolve_escalation
from portwright.sdk import (
    Adapter,
    IllegalTransitionError,
    InputTimeoutError,
    JobError,
    JobFinishedError,
    Logger,
    PageChangedError,
    PermanentError,
    TransientError,
)

if TYPE_CHECKING:
    from portwright.orchestrator._runtime import Runtime

__all__ = ["JobDriver"]

InputT = TypeVar("InputT", bound=BaseModel)
T = TypeVar("T")

RATE_LIMIT_PATIENCE = 50  # consecutive 429s on one step before a person is asked
OPERATOR_POLL_S = 3600.0
CONTROL_POLL_S = 30.0
# Our own bookkeeping (database reads/writes around a step) rides out a hiccup such as a
# database restart; failures of the portal itself are classified, never retried here.


def _infra(name: str) -> StepOptions:
    return {
        "name": name,
        "retries_allowed": True,
        "max_attempts": 6,
        "interval_seconds": 0.5,
        "backoff_rate": 2.0,
    }


class JobDriver(Generic[InputT]):
    def __init__(self, runtime: Runtime, adapter_cls: type[Adapter], snapshot: dict[str, Any]):  # type: ignore[type-arg]
        self._rt = runtime
        self._adapter_cls = adapter_cls
        self._adapter = adapter_cls()
        self._machine = adapter_cls.machine
        self._snapshot = snapshot
        self._job_id: str = snapshot["id"]
        self._tenant_id: str = snapshot["tenant_id"]
        self._portal: str = snapshot["portal"]
        self._input: InputT = adapter_cls.input_model.model_validate(snapshot["input"])  # type: ignore[assignment]
        self._state: str = snapshot["state"]
        self._cookies: list[CookieRow] = []
        self._cool_from: str | None = None
        self._log: Logger = structlog.get_logger("portwright.job").bind(
            job_id=self._job_id,
            workflow_id=self._job_id,
            tenant_id=self._tenant_id,
            adapter=adapter_cls.name,
        )
        self._span = SpanHandle()  # the job's span while `run` runs (a no-op unless traced)
        self._span_ids = {
            "job_id": self._job_id,
            "workflow_id": self._job_id,
            "tenant_id": self._tenant_id,
            "adapter": adapter_cls.name,
            "portal": self._portal,
        }

    # -- the Job protocol ----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._job_id

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    @property
    def input(self) -> InputT:
        return self._input

    @property
    def state(self) -> str:
        return self._state

    @property
    def log(self) -> Logger:
        return self._log

    async def transition(self, to_state: str, reason: str = "", **meta: Any) -> None:
        await self._transition(to_state, reason, meta, actor=f"adapter:{self._adapter_cls.name}")

    async def sleep(self, seconds: float) -> None:
        await DBOS.sleep_async(seconds)

    async def spawn(
        self, adapter: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[str]:
        plain = [(key, dict(data)) for key, data in items]
        # One step inserts every child and enqueues them all (set-based; ids derive from
        # this job, so a retried or replayed step re-inserts and re-enqueues nothing).
        children: list[dict[str, Any]] = await DBOS.run_step_async(
            _infra("spawn"),
            self._rt.insert_children,
            self._job_id,
            adapter,
            plain,
        )
        return [child["id"] for child in children]

    async def progress(self) -> Mapping[str, int]:
        counts: dict[str, int] = await DBOS.run_step_async(
            _infra("progress"), self._rt.child_progress, self._job_id
        )
        return counts

    async def alert(self, kind: str, reason: str, **details: Any) -> None:
        await DBOS.run_step_async(
            _infra("alert"), self._rt.alert, self._job_id, kind, reason, details
        )

    async def now(self) -> float:
        return float(await DBOS.run_step_async({"name": "now"}, time.time))

    async def wait_for_input(
        self, name: str, timeout_s: float, *, state: str | None = None, reason: str = ""
    ) -> Any:
        why = reason or f"waiting for {name}"
        if state is not None and state != self._state:
            await self._transition(state, why, {"input": name}, updates={"waiting_for": name})
        else:
            await self._transition(
                self._state, why, {"input": name}, updates={"waiting_for": name}, kind="control"
            )
        message = await DBOS.recv_async(f"input:{name}", timeout_seconds=timeout_s)
        if message is None:
            raise InputTimeoutError(name, timeout_s)
        return message.get("value") if isinstance(message, dict) else message

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        policy = self._adapter_cls.retry
        attempt = 0
        rotations = 0
        limited = 0
        while True:
            await self._gate()
            attempt += 1
            outcome: dict[str, Any] = await DBOS.run_step_async(
                _infra(f"step:{name}"),
                self._attempt,
                name,
                fn,
                attempt,
                args,
                kw,
            )
            if outcome["ok"]:
                self._cookies = outcome["cookies"]
                return outcome["value"]  # type: ignore[no-any-return]
            error_class = outcome["error_class"]
            message = outcome["message"]
            details = outcome["details"]
            self._log.warning(
                "step failed", step=name, attempt=attempt, error_class=error_class, error=message
            )
            if error_class == "permanent":
                raise PermanentError(message)
            if error_class == "rate_limited":
                limited += 1
                if limited < RATE_LIMIT_PATIENCE:
                    attempt -= 1  # waiting out a cooldown is not a failed attempt
                    continue
                decision = await self._escalate(
                    "rate_limited", name, f"still rate-limited after {limited} tries", details
                )
            elif error_class == "transient":
                if attempt >= policy.max_attempts:
                    await self._mark_degraded(f"{name}: {message}")
                    raise TransientError(
                        f"gave up on {name} after {attempt} transient failures: {message}"
                    )
                if attempt >= policy.degraded_after:
                    await self._mark_degraded(f"{name}: {message}")
                delay = backoff_delay(
                    attempt,
                    base=policy.base_delay_s,
                    cap=policy.max_delay_s,
                    key=f"{self._job_id}|{name}",
                )
                await self._pause_in(
                    self._machine.engine.retry_wait,
                    f"{name} attempt {attempt}/{policy.max_attempts} failed ({message}); "
                    f"retrying in {delay:.1f}s",
                    delay,
                )
                continue
            elif (
                error_class == "blocked"
                and outcome.get("rotated")
                and rotations < policy.max_rotations
            ):
                rotations += 1
                attempt -= 1
                continue
            else:
                if error_class == "blocked":
                    message = f"{message}; no identity left to rotate to"
                decision = await self._escalate(error_class, name, message, details)
            if decision["action"] == "resume":
                return cast(T, decision.get("value"))
            attempt, rotations, limited = 0, 0, 0  # "retry": run the step again

    # -- running -------------------------------------------------------------------------

    async def run(self) -> str:
        """Run the adapter to the end, in a span (a no-op unless traces are on)."""
        name = f"job {self._adapter_cls.name}"
        parent = self._snapshot.get("trace_parent")  # the request (or step) that submitted it
        # Every line logged while the job runs carries its ids, library code's lines too.
        with (
            structlog.contextvars.bound_contextvars(**self._span_ids),
            span(name, parent=parent, **self._span_ids) as self._span,
        ):
            state = await self._run()
            self._span.set(state=state)
            return state

    async def _run(self) -> str:
        """Run the adapter to the end and make sure the job ends visibly."""
        engine = self._machine.engine
        try:
            output = await self._adapter.run(self)
            if not self._machine.is_terminal(self._state):
                await self._transition(
                    self._machine.success,
                    "completed",
                    {},
                    updates={"output": dict(output or {})},
                )
        except JobFinishedError:
            pass
        except (PermanentError, TransientError) as exc:
            await self._end(engine.failed, exc.message, exc.error_class)
        except InputTimeoutError as exc:
            await self._end(engine.failed, str(exc), "needs_input")
        except IllegalTransitionError as exc:
            await self._end(engine.failed, f"adapter bug: {exc}", "adapter_error")
        except JobError as exc:
            await self._end(engine.failed, exc.message, exc.error_class)
        except Exception as exc:
            if type(exc).__module__.startswith("dbos"):
                raise  # cancellation and other DBOS control flow must reach DBOS
            self._log.exception("adapter crashed")
            await self._end(engine.failed, f"adapter error: {exc!r}", "adapter_error")
        return self._state

    async def _end(self, state: str, reason: str, error_class: str) -> None:
        self._span.fail(error_class, reason)
        with contextlib.suppress(JobFinishedError):
            await self._transition(
                state, reason, {}, updates={"reason": reason, "error_class": error_class}
            )

    # -- pieces --------------------------------------------------------------------------

    async def _transition(
        self,
        to_state: str,
        reason: str,
        meta: dict[str, Any],
        *,
        actor: str = "engine",
        updates: dict[str, Any] | None = None,
        kind: str = "transition",
    ) -> None:
        result = await self._tx(
            "transition",
            lambda conn: apply_transition(
                conn,
                self._rt.store,
                self._rt.machine_of,
                self._job_id,
                to_state=to_state,
                actor=actor,
                reason=reason,
                meta=meta,
                updates=updates,
                kind=kind,
            ),
        )
        self._apply_result(result, to_state)

    def _apply_result(self, result: dict[str, Any], to_state: str) -> None:
        if "finished" in result:
            self._state = result["finished"]
            raise JobFinishedError(self._job_id, result["finished"])
        if result.get("illegal"):
            raise IllegalTransitionError(self._machine.name, result["from"], to_state)
        self._state = result["state"]

    async def _tx(self, name: str, body: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        ds = self._rt.datasource

        def run() -> dict[str, Any]:
            return body(ds.sql_session().connection())

        run.__name__ = name
        options: Any = {"name": name, "isolation_level": self._rt.isolation}
        return await asyncio.to_thread(ds.run_tx_step, options, run)

    async def _pause_in(self, state: str, reason: str, seconds: float) -> None:
        """Sit in an engine state (retry wait, cooldown) for a while, then return."""
        back = self._state
        await self._transition(state, reason, {"seconds": round(seconds, 3)})
        await DBOS.sleep_async(seconds)
        await self._transition(back, f"back from {state}", {})

    async def _gate(self) -> None:
        """Before each attempt: stop if ended, wait while paused, cooling down or circuit-open."""
        cooldown = self._machine.engine.cooldown
        while True:
            gate: dict[str, Any] = await DBOS.run_step_async(
                _infra("gate"), self._rt.read_gate, self._job_id, self._portal
            )
            if gate["finished"]:
                self._state = gate["finished"]
                raise JobFinishedError(self._job_id, gate["finished"])
            if gate["paused"]:
                await DBOS.recv_async("control", timeout_seconds=CONTROL_POLL_S)
                continue
            wait_until = gate["wait_until"]
            if wait_until is not None and wait_until > gate["now"]:
                if self._state != cooldown:
                    self._cool_from = self._state
                    await self._transition(cooldown, gate["why"], {"until": wait_until})
                await DBOS.sleep_async(min(wait_until - gate["now"], 60.0) + 0.05)
                continue
            if self._state == cooldown and self._cool_from is not None:
                back, self._cool_from = self._cool_from, None
                await self._transition(back, "cooldown over", {})
            return

    async def _attempt(
        self,
        name: str,
        fn: Callable[..., Awaitable[Any]],
        attempt: int,
        args: tuple[Any, ...],
        kw: dict[str, Any],
    ) -> dict[str, Any]:
        """One checkpointed attempt: run the step, classify what went wrong, take side effects."""
        rt = self._rt
        job = await asyncio.to_thread(rt.store.jobs.get, self._job_id)
        selectors = await asyncio.to_thread(rt.selectors_for, self._adapter_cls)
        sc = StepContextImpl(
            rt, job, step=name, attempt=attempt, cookies=self._cookies, selectors=selectors
        )
        with (
            structlog.contextvars.bound_contextvars(step=name, attempt=attempt),
            span(f"step {name}", **self._span_ids, step=name, attempt=attempt) as traced,
        ):
            try:
                value = await fn(sc, *args, **kw)
            except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
                outcome = await self._classify(sc, name, exc)
                traced.fail(outcome["error_class"], outcome["message"])
                return outcome
            finally:
                cookies = sc.cookies()
                await sc.aclose()
        await self._account(ok=True)
        return {"ok": True, "value": value, "cookies": cookies}

    async def _account(self, *, ok: bool) -> None:
        """Feed the portal's breaker. Best effort: bookkeeping never fails a job."""
        try:
            await asyncio.to_thread(self._rt.record_portal_outcome, self._portal, ok=ok)
        except Exception:  # noqa: BLE001 - logged; breaker accounting is best effort
            self._log.exception("could not record the portal outcome")

    async def _classify(self, sc: StepContextImpl, name: str, exc: Exception) -> dict[str, Any]:
        rt = self._rt
        error = exc if isinstance(exc, JobError) else translate_exception(exc)
        if error is None:
            details = {"exception": repr(exc)}
            await sc.attach(
                "traceback",
                "".join(traceback.format_exception(exc)),
                content_type="text/plain",
            )
            return self._failure("unexpected", f"unexpected error in {name}: {exc!r}", details, sc)
        details = {k: v for k, v in error.details.items() if _jsonable(v)}
        error_class = error.error_class
        outcome = self._failure(error_class, error.message, details, sc)
        if error_class in ("transient", "rate_limited"):
            await self._account(ok=False)
        if error_class == "rate_limited":
            retry_after = float(getattr(error, "retry_after", 30.0))
            until = await asyncio.to_thread(
                rt.store.portals.extend_cooldown,
                self._portal,
                until=time.time() + retry_after,
                reason=f"{error.message} (Retry-After {retry_after:g}s)",
            )
            outcome["details"]["cooldown_until"] = until
        elif error_class == "blocked":
            outcome["rotated"] = await asyncio.to_thread(
                rt.identity.rotate, self._job_id, self._portal, error.message
            )
            PROCESS.burned(self._portal, rotated=outcome["rotated"])
        elif isinstance(error, PageChangedError) and error.html is not None:
            await sc.attach(
                "html",
                error.html,
                content_type="text/html",
                url=error.url,
                selector_key=error.selector_key,
                selector=error.selector,
            )
        outcome["details"]["evidence"] = list(sc.evidence_ids)
        return outcome

    @staticmethod
    def _failure(
        error_class: str, message: str, details: dict[str, Any], sc: StepContextImpl
    ) -> dict[str, Any]:
        return {
            "ok": False,
            "error_class": error_class,
            "message": sc.mask(message),  # a secret the step used never reaches logs or events
            "details": {**details, "evidence": list(sc.evidence_ids)},
            "rotated": False,
        }

    async def _mark_degraded(self, reason: str) -> None:
        await DBOS.run_step_async(
            {"name": "mark_degraded"},
            self._rt.store.portals.set_degraded,
            self._portal,
            reason=reason,
        )

    async def _escalate(
        self, kind: str, step: str, reason: str, details: dict[str, Any]
    ) -> dict[str, Any]:
        """Park in the operator state and wait durably for a decision; apply it."""
        back = self._state
        engine = self._machine.engine
        result = await self._tx(
            "escalate",
            lambda conn: open_escalation(
                conn,
                self._rt.store,
                self._rt.machine_of,
                self._job_id,
                kind=kind,
                step=step,
                reason=reason,
                details={**details, "back_to": back},
            ),
        )
        self._apply_result(result, engine.operator)
        escalation_id = result["escalation_id"]
        self._log.warning("escalated to an operator", kind=kind, escalation_id=escalation_id)
        while True:
            message = await DBOS.recv_async("operator", timeout_seconds=OPERATOR_POLL_S)
            if isinstance(message, dict) and message.get("escalation_id") == escalation_id:
                break
        action = message["action"]
        target = {"fail": engine.failed, "cancel": engine.cancelled}.get(action, back)
        resolved = await self._tx(
            "resolve",
            lambda conn: resolve_escalation(
                conn,
                self._rt.store,
                self._rt.machine_of,
                self._job_id,
                escalation_id=escalation_id,
                decision=message,
                to_state=target,
            ),
        )
        self._apply_result(resolved, target)
        if action == "fail":  # the job ends failed with the class it escalated with
            self._span.fail(kind, str(message.get("reason") or f"an operator failed it: {reason}"))
        if self._machine.is_terminal(self._state):
            raise JobFinishedError(self._job_id, self._state)
        return message


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)
