"""One polling-worker base: start, stop, wake, and a poll loop that outlives its errors.

A subclass names its rounds (`rounds()`: one or more async callables, each answering
whether it found work). The loop runs them in turn: after a busy pass it goes again at
once; otherwise it waits for `wake()` or `idle_s()`. A round that raises does not stop
the loop: its pacer (one per round) logs the failure and says how long to wait, growing
with each failure up to a cap, and hears when the round succeeds again. The default pacer
is a `Backoff` that logs one line per failure; the store's `OutageBackoff` fits too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog

from portwright.resilience._backoff import Backoff

__all__ = [
    "BackoffPacer",
    "Pacer",
    "PollingThread",
    "PollingWorker",
    "Round",
    "cancel_and_wait",
]

Round = Callable[[], Awaitable[bool]]

log = structlog.get_logger("portwright.polling")


class Pacer(Protocol):
    """How a loop waits after failures: `failed` logs and returns seconds; `ok` resets."""

    def failed(self, exc: BaseException) -> float: ...
    def ok(self) -> None: ...


class BackoffPacer:
    """A pacer from a `Backoff`: the n-th failure in a row waits `backoff.delay(n)`."""

    def __init__(self, backoff: Backoff, *, loop: str, logger: Any = log) -> None:
        self.backoff = backoff
        self.loop = loop
        self.log = logger
        self.failures = 0

    def failed(self, exc: BaseException) -> float:
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        self.log.error("loop round failed; retrying", loop=self.loop, retry_in_s=round(delay, 2),
                       exc_info=exc)  # fmt: skip
        return delay

    def ok(self) -> None:
        self.failures = 0


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has ended (None: nothing to do).

    Asked again until it ends: Python 3.11's `asyncio.wait_for` can swallow a cancellation
    that arrives as its timeout fires (a poller's idle wait), and the task runs on."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    with contextlib.suppress(asyncio.CancelledError):
        await task


class PollingWorker:
    """Base of the background pollers (one asyncio task each).

    Subclasses implement `rounds()` (or pass `rounds=`) and may override `idle_s()`,
    `on_start()` and `on_stop()`. `pacer` makes the pacer of a round from its name."""

    def __init__(
        self,
        name: str,
        *,
        poll_s: float,
        pacer: Callable[[str], Pacer] | None = None,
        rounds: Sequence[Round] | None = None,
    ) -> None:
        self.name = name
        self._rounds = list(rounds) if rounds is not None else None
        self.poll_s = poll_s
        self._make_pacer = pacer or (
            lambda loop: BackoffPacer(Backoff(poll_s, max(poll_s, 10.0), jitter=0.2), loop=loop)
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.passes = 0  # finished passes over the rounds (diagnostics, tests)
        self.last_pause: float | None = None  # the last wait the loop chose (diagnostics, tests)
        self._in_pause = False

    # -- what a subclass says -------------------------------------------------------------
    def rounds(self) -> Sequence[Round]:
        if self._rounds is None:
            raise NotImplementedError(f"{type(self).__name__} must name its rounds")
        return self._rounds

    def idle_s(self) -> float:
        """How long to wait for a wake-up when a pass found nothing to do."""
        return self.poll_s

    def on_start(self) -> None:
        """Called in `start()` before the task is created."""

    async def on_stop(self) -> None:
        """Called in `stop()` after the task has ended."""

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def waiting(self) -> bool:
        """In its idle pause with no wake-up pending: nothing more happens until `wake()`
        or the pause ends (tests use it to know a pass is over, diagnostics to show idleness)."""
        return self._in_pause and not self._wake.is_set()

    def wake(self) -> None:
        """Something may be due: look now, not at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self.on_start()
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.on_stop()

    async def _run(self) -> None:
        rounds = list(self.rounds())
        pacers = [self._make_pacer(self._round_name(r)) for r in rounds]
        while True:
            busy = False
            pause = 0.0
            for one, pacer in zip(rounds, pacers, strict=True):
                try:
                    busy = await one() or busy
                except Exception as exc:  # noqa: BLE001 - the loop must outlive its failures
                    pause = max(pause, pacer.failed(exc))
                else:
                    pacer.ok()
            self.passes += 1
            if busy and not pause:
                continue
            self.last_pause = max(pause, self.idle_s())
            self._in_pause = True
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.last_pause)
            finally:
                self._in_pause = False
            self._wake.clear()

    def _round_name(self, one: Round) -> str:
        rounds = self.rounds()
        if len(rounds) == 1:
            return self.name
        label = getattr(one, "__name__", "round").strip("_").removesuffix("_round")
        return f"{self.name}.{label}"


class PollingThread:
    """Runs a `PollingWorker` on an event loop of its own in a daemon thread: for a loop
    that must keep its pace whatever the application's event loop is doing (a worker's
    heartbeat). Its rounds may block: the loop is theirs alone."""

    def __init__(self, worker: PollingWorker, *, name: str) -> None:
        self.worker = worker
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the thread and its worker; returns once the worker runs."""
        self._thread.start()
        self._started.wait(timeout=10)

    def wake(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.worker.wake)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker (a round under way finishes first) and join the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
            self._thread.join(timeout=timeout)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.worker.start()
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await self.worker.stop()
