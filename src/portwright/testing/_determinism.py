"""A determinism check for an adapter's `run`, before a crash finds it.

After a crash a worker replays `run` from the start and expects it to ask for the same
steps, transitions and waits in the same order, with the same arguments, getting the
checkpointed results back. `check_determinism` replays `run` twice on the same recorded
step results (in a `FakeJob`, steps are not executed) and raises `DeterminismError` when
the two runs differ, naming the first difference, or when `run` read the clock, a random
source or a fresh UUID itself (naming the call and where): those belong in a step (or
`job.now()`), where their value is checkpointed.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from portwright.sdk import Adapter, InputTimeoutError
from portwright.testing._step_harness import RecordingLogger

__all__ = ["DeterminismError", "FakeJob", "check_determinism"]

T = TypeVar("T")

_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
_HERE = Path(__file__).resolve()

# (module, attribute) whose result differs from one run to the next
_SOURCES: tuple[tuple[Any, str], ...] = (
    (time, "time"),
    (time, "time_ns"),
    (time, "monotonic"),
    (time, "perf_counter"),
    (random, "random"),
    (random, "randint"),
    (random, "choice"),
    (random, "shuffle"),
    (random, "uniform"),
    (uuid, "uuid1"),
    (uuid, "uuid4"),
    (os, "urandom"),
)


class DeterminismError(AssertionError):
    """`run` is not deterministic: the message names what differed or what it called."""


class FakeJob:
    """A `Job` whose steps return recorded results instead of running.

    `steps` maps a step name to its recorded result (the same for every call of that
    name), or to a list of results, one per call in order; an exception instance is
    raised from `job.step` instead. `inputs` maps a `wait_for_input` name to what an
    operator or the API provided; a missing one raises InputTimeoutError as a timeout
    would. Every call `run` makes is appended to `trace`.
    """

    def __init__(
        self,
        adapter: type[Adapter[Any]],
        data: BaseModel | Mapping[str, Any],
        *,
        steps: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        job_id: str = "job-test",
        tenant_id: str = "tenant-test",
        now: float = 1_700_000_000.0,
    ) -> None:
        self._adapter = adapter
        self._input = (
            data if isinstance(data, BaseModel) else adapter.input_model.model_validate(data)
        )
        self._steps = dict(steps or {})
        self._inputs = dict(inputs or {})
        self._id = job_id
        self._tenant_id = tenant_id
        self._now = now
        self._state = adapter.machine.initial
        self._calls: dict[str, int] = {}
        self._log = RecordingLogger()
        self.trace: list[tuple[Any, ...]] = []

    @property
    def id(self) -> str:
        return self._id

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    @property
    def input(self) -> Any:
        return self._input

    @property
    def state(self) -> str:
        return self._state

    @property
    def log(self) -> RecordingLogger:
        return self._log

    async def transition(self, to_state: str, reason: str = "", **meta: Any) -> None:
        self.trace.append(("transition", to_state, reason, meta))
        if to_state == self._state:
            return  # the worker treats a transition to the current state as a no-op
        self._adapter.machine.check(self._state, to_state)
        self._state = to_state

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        self.trace.append(("step", name, getattr(fn, "__qualname__", repr(fn)), args, kw))
        if name not in self._steps:
            raise DeterminismError(
                f"run called step {name!r} but no recorded result was given for it "
                f"(recorded: {', '.join(sorted(self._steps)) or 'none'})"
            )
        recorded = self._steps[name]
        index = self._calls.get(name, 0)
        self._calls[name] = index + 1
        if isinstance(recorded, list):
            if index >= len(recorded):
                raise DeterminismError(
                    f"run called step {name!r} {index + 1} times; "
                    f"only {len(recorded)} results were recorded"
                )
            recorded = recorded[index]
        if isinstance(recorded, BaseException):
            raise recorded
        return recorded  # type: ignore[no-any-return]

    async def wait_for_input(
        self, name: str, timeout_s: float, *, state: str | None = None, reason: str = ""
    ) -> Any:
        self.trace.append(("wait_for_input", name, timeout_s, state, reason))
        if state is not None:
            await self.transition(state, reason)
        if name not in self._inputs:
            raise InputTimeoutError(name, timeout_s)
        return self._inputs[name]

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
        self.trace.append(("ask_customer", name, question, timeout_s, state))
        if state is not None:
            await self.transition(state, question)
        if name not in self._inputs:
            raise InputTimeoutError(name, timeout_s)
        return self._inputs[name]

    async def sleep(self, seconds: float) -> None:
        self.trace.append(("sleep", seconds))

    async def spawn(
        self, adapter: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[str]:
        self.trace.append(("spawn", adapter, [(k, dict(v)) for k, v in items]))
        return [f"{self._id}:{key}" for key, _ in items]

    async def progress(self) -> Mapping[str, int]:
        self.trace.append(("progress",))
        return {"total": 0}

    async def alert(self, kind: str, reason: str, **details: Any) -> None:
        self.trace.append(("alert", kind, reason, details))

    async def now(self) -> float:
        self.trace.append(("now",))
        return self._now


def _caller_outside_stdlib() -> str | None:
    """file:line of the nearest caller that is neither the standard library nor this
    module (the adapter's code), or None when the call came from the standard library
    (the event loop reads the monotonic clock itself)."""
    frame = sys._getframe(2)
    path = Path(frame.f_code.co_filename)
    with contextlib.suppress(OSError):
        path = path.resolve()
    if path == _HERE or path.is_relative_to(_STDLIB):
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


@contextlib.contextmanager
def _watching(calls: list[str]) -> Iterator[None]:
    """Note every clock/random/uuid call made from code outside the standard library."""
    saved: list[tuple[Any, str, Any]] = []
    mine = threading.get_ident()  # other threads of the process are not `run`'s

    def wrap(module: Any, attr: str, real: Callable[..., Any]) -> Callable[..., Any]:
        label = f"{module.__name__}.{attr}()"

        def watched(*args: Any, **kw: Any) -> Any:
            where = _caller_outside_stdlib() if threading.get_ident() == mine else None
            if where is not None:
                calls.append(f"{label} at {where}")
            return real(*args, **kw)

        return watched

    try:
        for module, attr in _SOURCES:
            real = getattr(module, attr)
            saved.append((module, attr, real))
            setattr(module, attr, wrap(module, attr, real))
        yield
    finally:
        for module, attr, real in reversed(saved):
            setattr(module, attr, real)


def _show(entry: tuple[Any, ...] | None) -> str:
    return "nothing (the run ended)" if entry is None else repr(entry)


async def _run_once(
    adapter: type[Adapter[Any]], data: BaseModel | Mapping[str, Any], **kw: Any
) -> tuple[FakeJob, Any, BaseException | None, list[str]]:
    job = FakeJob(adapter, data, **kw)
    calls: list[str] = []
    result: Any = None
    error: BaseException | None = None
    with _watching(calls):
        try:
            result = await adapter().run(job)
        except DeterminismError:
            raise
        except Exception as exc:  # noqa: BLE001 - an error ending run is part of its outcome
            error = exc
    return job, result, error, calls


async def check_determinism(
    adapter: type[Adapter[Any]],
    data: BaseModel | Mapping[str, Any],
    *,
    steps: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    runs: int = 2,
) -> list[tuple[Any, ...]]:
    """Replay `adapter().run` `runs` times on the same recorded `steps` and `inputs`
    (see `FakeJob`); return the trace of calls it made. Raise DeterminismError when `run`
    read a clock, random source or fresh UUID outside a step, or when two runs differ:
    another step, transition, argument, wait, result or error."""
    first = await _run_once(adapter, data, steps=steps, inputs=inputs)
    name = adapter.__qualname__
    if first[3]:
        raise DeterminismError(
            f"{name}.run is not deterministic: it called "
            + "; ".join(dict.fromkeys(first[3]))
            + " outside a step; move it into a step (or use job.now()) so a replay "
            "gets the checkpointed value"
        )
    for _ in range(runs - 1):
        other = await _run_once(adapter, data, steps=steps, inputs=inputs)
        if other[3]:
            raise DeterminismError(
                f"{name}.run is not deterministic: on replay it called "
                + "; ".join(dict.fromkeys(other[3]))
                + " outside a step"
            )
        a, b = first[0].trace, other[0].trace
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else None
            y = b[i] if i < len(b) else None
            if x != y:
                raise DeterminismError(
                    f"{name}.run is not deterministic: call #{i + 1} differs between two "
                    f"replays on the same step results: first {_show(x)}, then {_show(y)}"
                )
        if first[1] != other[1]:
            raise DeterminismError(
                f"{name}.run is not deterministic: it returned {first[1]!r}, then {other[1]!r}"
            )
        if repr(first[2]) != repr(other[2]):
            raise DeterminismError(
                f"{name}.run is not deterministic: it ended with {first[2]!r}, then {other[2]!r}"
            )
    return list(first[0].trace)
