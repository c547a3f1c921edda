"""The demo's further scenarios: each a coroutine run against the stack the bookings ran on.

A scenario module exposes `async def run(stack, world, progress) -> ScenarioResult`:
`stack` is the running `Stack` (runtime, service, vault, gateway URL), `world` the
`SandboxWorld`, and `progress(line)` prints one line of live progress, stamped with
the time since the demo started. The result's `lines` go into the demo's summary;
`ok` False makes `portwright demo --once` exit non-zero.

A module that needs a browser says so with `BROWSER = BrowserNeed(…)`: on a machine
without Chromium the demo skips the whole scenario (`whole=True`), or runs it with
`run(…, browser=False)` and the scenario leaves out the part that needs one; either
way the demo names what it skipped in one line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BrowserNeed", "Progress", "Scenario", "ScenarioResult"]

Progress = Callable[[str], None]


@dataclass
class ScenarioResult:
    name: str
    ok: bool
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BrowserNeed:
    """What of a scenario needs a browser: `what` names it for the skip line."""

    what: str
    whole: bool = False  # True: nothing of the scenario runs without one


Scenario = Callable[[Any, Any, Progress], Awaitable[ScenarioResult]]
