"""Polling helper for tests of asynchronous, durable behaviour."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable

__all__ = ["wait_until", "wait_until_sync"]


async def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for the whole poll, not for one await
    every: float = 0.05,
) -> object:
    """Poll a sync or async predicate until it is truthy and return that value.

    Raises AssertionError with the last value seen after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def wait_until_sync(
    predicate: Callable[[], object], *, timeout: float = 30.0, every: float = 0.05
) -> object:
    """`wait_until` for code without an event loop (threads, subprocess supervision)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
