"""The job driver: what `Adapter.run` sees as its `Job`, implemented on DBOS.

Everything here runs inside the job's DBOS workflow, so it must be
deterministic: every read of the outside world (time, the database, the
portal) happens in a checkpointed step, and every state change in one
transaction with its audit event.

One adapter step is one DBOS step: a transaction that applies what is pending
(the adapter's transitions since the last write, the portal outcomes of earlier
steps) and reads the gate (finished, paused, cooling down, circuit open), then
the step function, then the checkpoint of its result. If the gate says wait, the
step function does not run and the step returns the wait instead. Transitions
followed by a step are not written on their own: they ride in that step's
transaction (the batch is idempotent, so a step re-run before its checkpoint
does not write them twice). Bookkeeping after the step function (its breaker
outcome, evidence of a failure, a cooldown, an identity rotation) happens after
its result is checkpointed, so a database error there retries the bookkeeping,
never the step function.
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
from sqlalchemy.exc import SQLAlchemyError

from portwright.engines.http import CookieRow, translate_exception
from portwright.observability import PROCESS, SpanHandle, span
from portwright.orchestrator._backoff import backoff_delay
from portwright.orchestrator._step_context import StepContextImpl
from portwright.orchestrator._tx import (
    apply_batch,
    open_escalation,
    resolve_escalation,
    run_batch,
)
from portwright.resilience import Backoff
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
from portwright.store import is_database_unavailable

if TYPE_CHECKING:
    from portwright.orchestrator._runtime import Runtime

__all__ = ["JobDriver"]

InputT = TypeVar("InputT", bound=BaseModel)
T = TypeVar("T")

RATE_LIMIT_PATIENCE = 50  # consecutive 429s on one step before a person is asked
OPERATOR_POLL_S = 3600.0
CONTROL_POLL_S = 30.0
COOLDOWN_RECHECK_S = 10.0  # a job cooling down reads the portal's gate again this often
OUTCOMES_DUE_S = 1.0  # successes wait at most this long (plus a step) to reach the breaker
FINISH_ATTEMPTS = 8  # a job's last write, across a database hiccup
FINISH_BACKOFF = Backoff(0.5, 8.0)  # the pause between those writes
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
        # Sealed secret input fields are opened here, in memory only (never a step's output).
        opened = runtime.inputs.open(self._tenant_id, adapter_cls.input_model, snapshot["input"])
        self._input: InputT = adapter_cls.input_model.model_validate(opened)  # type: ignore[assignment]
        self._state: str = snapshot["state"]
        # The target site, for a portal whose jobs reach many: its cooldowns and breaker
        # stand in for the portal's (a 429 there slows that site only).
        self._site = self._adapter.site_of(self._input)
        self._site_host: str | None = None if self._site is None else self._site.host
        self._cookies: list[CookieRow] = []
        self._cool_from: str | None = None
        self._cool_until: float | None = None  # the cooldown's end the timeline shows
        # Written with the next transaction (see the module docstring): the adapter's
        # transitions since the last write, and the portal outcomes of steps since then.
        self._pending: list[dict[str, Any]] = []
        self._outcomes: list[bool] = []
        # When the first pending outcome's attempt started and the last one ended (both
        # from checkpoints, so replays decide the same): see `_take_batch`.
        self._outcomes_span: tuple[float, float] | None = None
        self._seq: int | None = snapshot.get("seq")  # the job's seq after our last write
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
        self._defer(to_state, reason, meta, actor=f"adapter:{self._adapter_cls.name}")

    async def sleep(self, seconds: float) -> None:
        await self._flush()
        await DBOS.sleep_async(seconds)

    async def spawn(
        self, adapter: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[str]:
        await self._flush()
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
        await self._flush()
        counts: dict[str, int] = await DBOS.run_step_async(
            _infra("progress"), self._rt.child_progress, self._job_id
        )
        return counts

    async def alert(self, kind: str, reason: str, **details: Any) -> None:
        await self._flush()
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

    async def ask_customer(
        self,
        name: str,
        question: str,
        timeout_s: float,
        *,
        state: str | None = None,
        kind: str = "text",
        fallback: str = "raise",
    ) -> Any:
        if fallback not in ("raise", "operator"):
            raise ValueError(f"fallback: 'raise' or 'operator', not {fallback!r}")
        deadline = await self.now() + timeout_s
        meta = {"input": name, "ask": "customer", "question": question, "kind": kind,
                "deadline": deadline}  # fmt: skip
        if state is not None and state != self._state:
            await self._transition(state, question, meta, updates={"waiting_for": name})
        else:
            await self._transition(
                self._state, question, meta, updates={"waiting_for": name}, kind="control"
            )
        await DBOS.run_step_async(
            _infra("ask_customer"), self._rt.ask_customer, self._job_id, name, question, deadline
        )
        message = await DBOS.recv_async(f"input:{name}", timeout_seconds=timeout_s)
        if message is not None:
            return message.get("value") if isinstance(message, dict) else message
        await DBOS.run_step_async(
            _infra("customer_timed_out"), self._rt.customer_timed_out, self._job_id, name, question
        )
        if fallback == "operator":
            decision = await self._escalate(
                "customer_timeout",
                f"ask:{name}",
                f"the customer did not answer in time: {question}",
                {"input": name},
            )
            return decision.get("value")
        raise InputTimeoutError(name, timeout_s)

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        policy = self._adapter_cls.retry
        attempt = 0
        rotations = 0
        limited = 0
        while True:
            outcome: dict[str, Any] = await DBOS.run_step_async(
                _infra(f"step:{name}"),
                self._attempt,
                name,
                fn,
                attempt + 1,
                args,
                kw,
                self._take_batch(),
            )
            self._absorb(outcome)
            if outcome["gate"] is not None:
                await self._wait(outcome["gate"])
                continue
            attempt += 1
            if outcome["ok"]:
                self._cookies = outcome["cookies"]
                self._outcomes.append(True)  # the breaker hears of it with a later write
                first = self._outcomes_span[0] if self._outcomes_span else outcome["started"]
                if outcome["probe"]:  # a half-open breaker waits for this one: send it next
                    first = outcome["ended"] - OUTCOMES_DUE_S
                self._outcomes_span = (first, outcome["ended"])
                return outcome["value"]  # type: ignore[no-any-return]
            outcome = await DBOS.run_step_async(
                _infra(f"after:{name}"), self._after_failure, name, outcome
            )
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
                await self._retry_later(name, attempt, message)
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

    async def _retry_later(self, name: str, attempt: int, message: str) -> None:
        """After a transient failure: give up, or sit in the retry state for a backoff."""
        policy = self._adapter_cls.retry
        if attempt >= policy.max_attempts:
            await self._mark_degraded(f"{name}: {message}")
            raise TransientError(f"gave up on {name} after {attempt} transient failures: {message}")
        if attempt >= policy.degraded_after:
            await self._mark_degraded(f"{name}: {message}")
        delay = backoff_delay(
            attempt, base=policy.base_delay_s, cap=policy.max_delay_s, key=f"{self._job_id}|{name}"
        )
        await self._pause_in(
            self._machine.engine.retry_wait,
            f"{name} attempt {attempt}/{policy.max_attempts} failed ({message}); "
            f"retrying in {delay:.1f}s",
            delay,
        )

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
            try:
                state = await self._run()
            finally:
                self._rt.pause_waits.pop(self._job_id, None)  # only while it runs here
            self._span.set(state=state)
            if self._machine.is_terminal(state) and self._rt.customer_notifier.channels:
                # The customer hears how it ended (once: a checkpointed step; none, and no
                # checkpoint, where no notification channel is configured).
                await DBOS.run_step_async(_infra("notify_end"), self._rt.job_ended, self._job_id)
            return state

    async def _run(self) -> str:
        """Run the adapter to the end and make sure the job ends visibly."""
        engine = self._machine.engine
        try:
            output = await self._adapter.run(self)
            if not self._machine.is_terminal(self._state):
                self._defer(
                    self._machine.success,
                    "completed",
                    {},
                    updates={"output": dict(output or {})},
                    check=False,
                )
            elif output is not None:
                await self._keep_output(dict(output))
            await self._finish()
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

    async def _keep_output(self, output: dict[str, Any]) -> None:
        """The adapter moved the job to a terminal state itself and returned an output: it
        rides with that transition, still pending (`_flush` holds a terminal change back
        for the job's last write, so the job is never seen finished without its output)."""
        if self._ends_pending():
            last = self._pending[-1]
            last["updates"] = {**(last["updates"] or {}), "output": output}

    def _ends_pending(self) -> bool:
        """Does what is pending end the job (the adapter's own terminal transition)?"""
        if not self._pending:
            return False
        last = self._pending[-1]
        return last["kind"] == "transition" and self._machine.is_terminal(last["to_state"])

    async def _end(self, state: str, reason: str, error_class: str) -> None:
        self._span.fail(error_class, reason)
        with contextlib.suppress(JobFinishedError):
            self._defer(
                state,
                reason,
                {},
                updates={"reason": reason, "error_class": error_class},
                check=False,
            )
            await self._finish()

    # -- pieces --------------------------------------------------------------------------

    def _defer(
        self,
        to_state: str,
        reason: str,
        meta: dict[str, Any],
        *,
        actor: str = "engine",
        updates: dict[str, Any] | None = None,
        check: bool = True,
    ) -> None:
        """Queue a transition for the next write, checking the machine now (the job's
        state can only have moved on to a terminal one, which the write reports)."""
        if check:
            if self._machine.is_terminal(self._state):
                raise JobFinishedError(self._job_id, self._state)
            if not self._machine.allows(self._state, to_state):
                raise IllegalTransitionError(self._machine.name, self._state, to_state)
        self._pending.append(
            {
                "to_state": to_state,
                "actor": actor,
                "reason": reason,
                "meta": meta,
                "updates": updates,
                "kind": "transition",
            }
        )
        self._state = to_state

    def _take_batch(self) -> dict[str, Any]:
        """What the next step's transaction writes (and it is no longer pending here)."""
        cooldown = self._machine.engine.cooldown
        leave = (
            {"to": self._cool_from}
            if self._state == cooldown and self._cool_from is not None
            else None
        )
        # Successes ride with the next write of transitions, or once they span a second
        # (a run of quick steps then makes no write at all until the job's end).
        span = self._outcomes_span
        due = bool(self._pending) or (span is not None and span[1] - span[0] >= OUTCOMES_DUE_S)
        outcomes = self._outcomes if due else []
        batch = {
            "changes": self._pending,
            "outcomes": outcomes,
            "base_seq": self._seq,
            "leave": leave,
        }
        self._pending = []
        if due:
            self._outcomes, self._outcomes_span = [], None
        return batch

    def _absorb(self, result: dict[str, Any]) -> None:
        """Take a write's result: the job's state and seq, or why it did not happen."""
        if "finished" in result:
            self._state = result["finished"]
            raise JobFinishedError(self._job_id, result["finished"])
        if result.get("illegal"):
            self._state = result["from"]  # where the job stopped (changes before it stand)
            self._seq = result.get("seq", self._seq)
            raise IllegalTransitionError(self._machine.name, result["from"], result["to"])
        self._state = result["state"]
        self._seq = result["seq"]
        if result.get("left_cooldown"):
            self._cool_from = None
            self._cool_until = None

    async def _flush(self) -> None:
        """Write what is pending now (before the workflow waits or does something else)."""
        if self._outcomes:
            outcomes, self._outcomes, self._outcomes_span = self._outcomes, [], None
            await DBOS.run_step_async(_infra("account"), self._record_outcomes, outcomes)
        if self._pending and not self._ends_pending():  # the job's end waits for its output
            self._absorb(await self._write_pending([]))

    async def _write_pending(self, more: list[dict[str, Any]]) -> dict[str, Any]:
        """What is pending and `more`, in one checkpointed transaction."""
        changes, self._pending = [*self._pending, *more], []
        store, machine_of, job_id = self._rt.store, self._rt.machine_of, self._job_id
        return await self._tx(
            "transition", lambda conn: apply_batch(conn, store, machine_of, job_id, changes)
        )

    async def _finish(self) -> None:
        """The job's last write: what is pending, ending in its terminal transition.

        Not a checkpoint: a terminal write cannot happen twice (a re-run finds the job
        finished and writes nothing), so it needs none. A database error is retried.
        """
        if not self._pending and not self._outcomes:
            return
        changes, outcomes = self._pending, self._outcomes
        self._pending, self._outcomes, self._outcomes_span = [], [], None
        rt = self._rt
        for attempt in range(1, FINISH_ATTEMPTS + 1):
            try:
                result, _ = await asyncio.to_thread(
                    run_batch,
                    rt.store,
                    rt.machine_of,
                    rt.breaker_policy,
                    self._job_id,
                    self._portal,
                    changes=changes,
                    outcomes=outcomes,
                    base_seq=None,
                    gate=False,
                    site=self._site_host,
                )
                break
            except SQLAlchemyError:
                if attempt == FINISH_ATTEMPTS:
                    raise
                self._log.warning("could not write the job's end; retrying", exc_info=True)
                await asyncio.sleep(FINISH_BACKOFF.delay(attempt))
        self._absorb(result)

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
        """A transition written now, with whatever is pending (the workflow waits next)."""
        if self._outcomes:
            outcomes, self._outcomes, self._outcomes_span = self._outcomes, [], None
            await DBOS.run_step_async(_infra("account"), self._record_outcomes, outcomes)
        change = {
            "to_state": to_state,
            "actor": actor,
            "reason": reason,
            "meta": meta,
            "updates": updates,
            "kind": kind,
        }
        self._apply_result(await self._write_pending([change]), to_state)

    def _apply_result(self, result: dict[str, Any], to_state: str) -> None:
        if "finished" in result:
            self._state = result["finished"]
            raise JobFinishedError(self._job_id, result["finished"])
        if result.get("illegal"):
            raise IllegalTransitionError(self._machine.name, result["from"], to_state)
        self._state = result["state"]
        self._seq = result.get("seq", self._seq)

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
        self._defer(back, f"back from {state}", {}, check=False)  # written with the next step

    async def _wait(self, gate: dict[str, Any]) -> None:
        """The step did not run: wait while paused, cooling down or circuit-open."""
        if gate["paused"]:  # a pause comes first, cooling down or not
            self._rt.pause_waits[self._job_id] += 1
            await DBOS.recv_async("control", timeout_seconds=CONTROL_POLL_S)
            return
        cooldown = self._machine.engine.cooldown
        wait_until = float(gate["wait_until"])
        cause = "breaker" if gate["why"] == "circuit open" else "portal cooldown"
        if cause != "breaker" and str(gate["why"]).startswith("site "):
            cause = "site cooldown"
        meta = {"until": wait_until, "cause": cause}
        if self._state != cooldown:
            self._cool_from = self._state
            self._cool_until = wait_until
            await self._transition(cooldown, gate["why"], meta)
        elif self._cool_until is None or wait_until > self._cool_until:
            # Still cooling down past the end the timeline shows: say so, and why (another
            # job's 429, the breaker, an operator), so a long wait is never unexplained.
            shown = self._cool_until
            self._cool_until = wait_until
            await self._transition(
                cooldown,
                f"cooldown extended: {gate['why']}",
                {**meta, "was_until": shown},
                kind="control",
            )
        # Read the gate again at least every COOLDOWN_RECHECK_S: an operator may end the
        # cooldown early. (A sleep, not a recv: a recovered workflow replays its recorded
        # steps, and a cooldown wait has always been a sleep.)
        await DBOS.sleep_async(min(wait_until - gate["now"], COOLDOWN_RECHECK_S) + 0.05)

    async def _attempt(
        self,
        name: str,
        fn: Callable[..., Awaitable[Any]],
        attempt: int,
        args: tuple[Any, ...],
        kw: dict[str, Any],
        batch: dict[str, Any],
    ) -> dict[str, Any]:
        """One checkpointed attempt: the step's transaction (pending writes and the gate),
        then, if the gate allows, the step function and what became of it.

        Anything that can fail here fails before the step function runs (DBOS retries the
        attempt then, and the batch is idempotent); after it, nothing raises.
        """
        rt = self._rt
        started = time.time()
        result, job = await asyncio.to_thread(
            run_batch,
            rt.store,
            rt.machine_of,
            rt.breaker_policy,
            self._job_id,
            self._portal,
            changes=batch["changes"],
            outcomes=batch["outcomes"],
            base_seq=batch["base_seq"],
            gate=True,
            leave=batch["leave"],
            site=self._site_host,
        )
        if "state" not in result or result.get("illegal") or result["gate"] is not None:
            return {**result, "gate": result.get("gate")}
        selectors = rt.cached_selectors(self._adapter_cls)  # on the loop when cached
        if selectors is None:
            selectors = await asyncio.to_thread(rt.selectors_for, self._adapter_cls)
        sc = StepContextImpl(
            rt, job, step=name, attempt=attempt, cookies=self._cookies, selectors=selectors
        )
        written = {k: result[k] for k in ("state", "seq", "left_cooldown", "probe")}
        with (
            structlog.contextvars.bound_contextvars(step=name, attempt=attempt),
            span(f"step {name}", **self._span_ids, step=name, attempt=attempt) as traced,
        ):
            try:
                value = await fn(sc, *args, **kw)
            except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
                outcome = self._classify(sc, name, exc)
                traced.fail(outcome["error_class"], outcome["message"])
                await self._close(sc)
                return {**written, **outcome, "gate": None}
            await self._close(sc)
            if name in self._adapter_cls.read_only_steps:  # the shadow version, if any, too
                await rt.rollouts.run_shadow(
                    self._adapter_cls, job, name, args, kw, value, self._cookies
                )
        return {
            **written,
            "ok": True,
            "value": value,
            "cookies": sc.cookies(),
            "gate": None,
            "started": started,
            "ended": time.time(),
        }

    async def _close(self, sc: StepContextImpl) -> None:
        """Close the attempt's clients; its result stands whatever happens here."""
        try:
            await sc.aclose()
        except Exception:  # noqa: BLE001 - logged; the step function's result is what counts
            self._log.exception("could not close the step's context", step=sc.step)

    def _record_outcomes(self, outcomes: list[bool]) -> None:
        for ok in outcomes:
            self._rt.record_portal_outcome(self._portal, ok=ok, site=self._site_host)

    def _classify(self, sc: StepContextImpl, name: str, exc: Exception) -> dict[str, Any]:
        """What went wrong, without writing anything: evidence, the breaker, cooldowns and
        rotations are `_after_failure`'s, once this is checkpointed."""
        error = exc if isinstance(exc, JobError) else translate_exception(exc)
        if error is None and is_database_unavailable(exc):
            # Our database went away under the step (a restart, a failover): the step is
            # tried again once it is back, as for a network error; no person can help.
            error = TransientError(f"database unavailable in {name}: {type(exc).__name__}")
        error = sc.refused or error  # an SSRF refusal is why, whatever the page showed next
        if error is None:
            outcome = self._failure(
                "unexpected", f"unexpected error in {name}: {exc!r}", {"exception": repr(exc)}, sc
            )
            outcome["attach"] = [
                {
                    "kind": "traceback",
                    "data": "".join(traceback.format_exception(exc)),
                    "content_type": "text/plain",
                    "meta": {},
                }
            ]
            return outcome
        details = {k: v for k, v in error.details.items() if _jsonable(v)}
        outcome = self._failure(error.error_class, error.message, details, sc)
        if error.error_class == "rate_limited":
            outcome["retry_after"] = float(getattr(error, "retry_after", 30.0))
            outcome["error_message"] = error.message
        elif error.error_class == "blocked":
            outcome["error_message"] = error.message
        elif isinstance(error, PageChangedError) and error.html is not None:
            outcome["attach"] = [
                {
                    "kind": "html",
                    "data": error.html,
                    "content_type": "text/html",
                    "meta": {
                        "url": error.url,
                        "selector_key": error.selector_key,
                        "selector": error.selector,
                    },
                }
            ]
        return outcome

    async def _after_failure(self, name: str, outcome: dict[str, Any]) -> dict[str, Any]:
        """A failed attempt's bookkeeping, its own checkpointed step (retried on its own)."""
        rt = self._rt
        outcome = dict(outcome)
        outcome["details"] = dict(outcome["details"])
        error_class = outcome["error_class"]
        attachments = outcome.pop("attach", [])
        if attachments:
            job = await asyncio.to_thread(rt.store.jobs.get, self._job_id)
            for item in attachments:
                evidence_id = await asyncio.to_thread(
                    rt.attach_evidence,
                    job,
                    step=name,
                    kind=item["kind"],
                    data=item["data"],
                    content_type=item["content_type"],
                    meta=item["meta"],
                )
                outcome["details"]["evidence"] = [*outcome["details"]["evidence"], evidence_id]
        # Only a transient failure says the portal is unwell. A 429 is the portal answering:
        # its cooldown honours Retry-After, and counting it in the breaker too opened the
        # breaker under rate limiting, holding the portal's jobs for its open time and probe
        # lease (waits of 29-75 s against a Retry-After of 1.6 s). A half-open breaker's
        # probe that got any other answer closes it (else every job waits out the lease).
        if error_class == "transient":
            await self._account(ok=False)
        elif outcome.get("probe"):
            await self._account(ok=True)
        if error_class == "rate_limited":
            retry_after = float(outcome.pop("retry_after"))
            reason = f"{outcome.pop('error_message')} (Retry-After {retry_after:g}s)"
            actor = f"job:{self._job_id}"
            if self._site is None:
                until = await asyncio.to_thread(
                    rt.store.portals.extend_cooldown,
                    self._portal,
                    until=time.time() + retry_after,
                    reason=reason,
                    cause="429",
                    actor=actor,
                )
            else:  # this site only; this tenant's jobs there only, if its identity met it
                until = await asyncio.to_thread(
                    rt.store.sites.extend_cooldown,
                    self._portal,
                    self._site.host,
                    tenant_id=self._tenant_id if self._site.own_identity else None,
                    until=time.time() + retry_after,
                    reason=reason,
                    cause="429",
                    actor=actor,
                )
                outcome["details"]["site"] = self._site.host
            outcome["details"]["cooldown_until"] = until
        elif error_class == "blocked":
            outcome["rotated"] = await asyncio.to_thread(
                rt.identity.rotate, self._job_id, self._portal, outcome.pop("error_message")
            )
            PROCESS.burned(self._portal, rotated=outcome["rotated"])
        return outcome

    async def _account(self, *, ok: bool) -> None:
        """Feed the portal's breaker. Best effort: bookkeeping never fails a job."""
        try:
            await asyncio.to_thread(
                self._rt.record_portal_outcome, self._portal, ok=ok, site=self._site_host
            )
        except Exception:  # noqa: BLE001 - logged; breaker accounting is best effort
            self._log.exception("could not record the portal outcome")

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

    def _log_escalated(self, kind: str, escalation_id: str) -> None:
        self._log.warning("escalated to an operator", kind=kind, escalation_id=escalation_id)

    async def _mark_degraded(self, reason: str) -> None:
        if self._site is not None:  # the site is unwell, not every site of the portal
            await DBOS.run_step_async(
                {"name": "mark_degraded"},
                self._rt.store.sites.set_degraded,
                self._portal,
                self._site.host,
                reason=reason,
            )
            return
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
        await self._flush()
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
        # Logged in a step of its own: a replay (a worker restart) returns its checkpoint
        # and logs nothing, so the line appears once, when the escalation happens.
        await DBOS.run_step_async(
            {"name": "log:escalated"},
            self._log_escalated,
            kind,
            escalation_id,
        )
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
