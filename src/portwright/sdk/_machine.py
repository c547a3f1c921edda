"""Declared state machines: each job kind lists its states and allowed transitions."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from portwright.sdk._errors import IllegalTransitionError

__all__ = ["EngineStates", "Outcome", "StateMachine", "linear_machine"]

Outcome = Literal["succeeded", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class EngineStates:
    """The states the orchestrator itself moves a job into. Names are per machine."""

    queued: str = "QUEUED"
    operator: str = "OPERATOR_ACTION_REQUIRED"
    cooldown: str = "COOLDOWN"
    retry_wait: str = "RETRY_WAIT"
    failed: str = "FAILED"
    cancelled: str = "CANCELLED"


@dataclass(frozen=True)
class StateMachine:
    """States, transitions and what each terminal state means.

    The orchestrator may move any non-terminal job into its engine states
    (operator, cooldown, retry wait, failed, cancelled), and back from the
    operator, cooldown and retry-wait states to any non-terminal state; those
    edges are added automatically. Everything else must be declared.
    """

    name: str
    initial: str
    transitions: Mapping[str, frozenset[str]]
    terminal: Mapping[str, Outcome]
    success: str
    waiting: frozenset[str] = frozenset()
    engine: EngineStates = field(default_factory=EngineStates)

    def __post_init__(self) -> None:
        declared = set(self.transitions) | set(self.terminal)
        for targets in self.transitions.values():
            declared |= set(targets)
        engine = self.engine
        for state in (
            engine.queued,
            engine.operator,
            engine.cooldown,
            engine.retry_wait,
            engine.failed,
            engine.cancelled,
            self.initial,
            self.success,
        ):
            if state not in declared:
                raise ValueError(f"{self.name}: state {state!r} is used but never declared")
        if self.terminal.get(self.success) != "succeeded":
            raise ValueError(f"{self.name}: success state {self.success!r} must be terminal")

    @functools.cached_property
    def states(self) -> frozenset[str]:  # asked on every transition checked: computed once
        out = set(self.transitions) | set(self.terminal)
        for targets in self.transitions.values():
            out |= set(targets)
        return frozenset(out)

    def is_terminal(self, state: str) -> bool:
        return state in self.terminal

    def allows(self, from_state: str | None, to_state: str) -> bool:
        if from_state is None:
            return to_state == self.initial
        if from_state in self.terminal or to_state not in self.states:
            return False
        if to_state in self.transitions.get(from_state, frozenset()):
            return True
        engine = self.engine
        if to_state in (
            engine.operator,
            engine.cooldown,
            engine.retry_wait,
            engine.failed,
            engine.cancelled,
        ):
            return True
        return from_state in (engine.operator, engine.cooldown, engine.retry_wait)

    def check(self, from_state: str | None, to_state: str) -> None:
        if not self.allows(from_state, to_state):
            raise IllegalTransitionError(self.name, from_state, to_state)

    def status_of(self, state: str) -> str:
        """Coarse status shown in lists: queued, running, waiting, or the terminal outcome."""
        if state in self.terminal:
            return self.terminal[state]
        if state in (self.initial, self.engine.queued):
            return "queued"
        if state in self.waiting or state == self.engine.operator:
            return "waiting"
        return "running"

    @classmethod
    def build(
        cls,
        name: str,
        *,
        initial: str,
        transitions: Mapping[str, Iterable[str]],
        terminal: Mapping[str, Outcome],
        success: str,
        waiting: Iterable[str] = (),
        engine: EngineStates | None = None,
    ) -> StateMachine:
        return cls(
            name=name,
            initial=initial,
            transitions={k: frozenset(v) for k, v in transitions.items()},
            terminal=dict(terminal),
            success=success,
            waiting=frozenset(waiting),
            engine=engine or EngineStates(),
        )


def linear_machine(name: str, steps: Iterable[str]) -> StateMachine:
    """INIT → QUEUED → each of `steps` in order → SUCCEEDED, plus the engine states."""
    order = ["INIT", "QUEUED", *steps, "SUCCEEDED"]
    transitions: dict[str, list[str]] = {a: [b] for a, b in itertools.pairwise(order)}
    transitions.setdefault("OPERATOR_ACTION_REQUIRED", [])
    transitions.setdefault("COOLDOWN", [])
    transitions.setdefault("RETRY_WAIT", [])
    return StateMachine.build(
        name,
        initial="INIT",
        transitions=transitions,
        terminal={"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled"},
        success="SUCCEEDED",
    )
