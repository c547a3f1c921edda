"""The demo's further scenarios: each a coroutine run against the stack the bookings ran on.

A scenario module exposes `async def run(stack, world, progress) -> ScenarioResult`:
`stack` is the running `Stack` (runtime, service, vault, gateway URL), `world` the
`SandboxWorld`, and `progress(line)` prints one line of live progress, stamped with
the time since the demo started. The result's `lines` go into the demo's summary;
`ok` False makes `portwright demo --once` exit non-zero.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Progress", "Scenario", "ScenarioResult"]

Progress = Callable[[str], None]


@dataclass
class ScenarioResult:
    name: str
    ok: bool
    lines: list[str] = field(default_factory=list)


Scenario = Callable[[Any, Any, Progress], Awaitable[ScenarioResult]]
