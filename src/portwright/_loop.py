"""The long-running processes' event loop: uvloop where it is installed, else asyncio's."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

__all__ = ["LOOPS", "use_event_loop"]

LOOPS = ("auto", "uvloop", "asyncio")


def use_event_loop(choice: str) -> str:
    """Make `choice` the event loop of every loop this process creates from now on (DBOS's
    background loop, which runs every job and chunk, the relay's, uvicorn's); returns the
    one in use: "uvloop" or "asyncio".

    Called once by a long-running command (`portwright up`, `api`, `worker`, the relay)
    before it starts anything; tests and libraries that build stacks in-process do not.
    "auto" takes uvloop when it can be imported (it comes with uvicorn's standard extras
    on Linux and macOS; not on Windows); "uvloop" insists on it; "asyncio" keeps Python's.
    A worker's event loop runs every item of a batch: each HTTP fetch's socket callbacks,
    timers, futures and task switches, and the thread hops of its database work. With
    uvloop the same batch took ~10 % less CPU in one process (benchmarks/README.md)."""
    if choice not in LOOPS:
        raise ValueError(f"event loop: {choice!r} is not one of {', '.join(LOOPS)}")
    if choice == "asyncio" or (choice == "auto" and not _uvloop_available()):
        return "asyncio"
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _uvloop_available() -> bool:
    return sys.platform != "win32" and importlib.util.find_spec("uvloop") is not None
