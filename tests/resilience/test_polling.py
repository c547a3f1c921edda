"""The polling-worker base: wake, stop, busy passes, and backoff after errors (no sleeps:
the pauses are long and each step is driven by `wake()` or observed with a deadline)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from portwright.resilience import Backoff, PollingThread, PollingWorker, Round
from portwright.testing import wait_until


class Recorder:
    """A pacer that records what it was told (the base's seam for error pacing)."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.failures = 0
        self.errors: list[str] = []
        self.oks = 0

    def failed(self, exc: BaseException) -> float:
        self.failures += 1
        self.errors.append(str(exc))
        return self.backoff.delay(self.failures)

    def ok(self) -> None:
        self.failures = 0
        self.oks += 1


class Scripted(PollingWorker):
    """A worker whose one round follows a script: True = busy, False = idle, str = raise."""

    def __init__(self, script: list[bool | str], pacer: Recorder) -> None:
        super().__init__("scripted", poll_s=60.0, pacer=lambda _name: pacer)
        self.script = script
        self.calls = 0
        self.stopped = False

    def rounds(self) -> Sequence[Round]:
        return [self.poll]

    async def poll(self) -> bool:
        step = self.script[self.calls] if self.calls < len(self.script) else False
        self.calls += 1
        if isinstance(step, str):
            raise RuntimeError(step)
        return step

    async def on_stop(self) -> None:
        self.stopped = True


async def test_busy_passes_run_back_to_back_then_the_loop_waits_for_a_wake() -> None:
    """Busy rounds go again at once; an idle one waits (60 s here) until woken."""
    worker = Scripted([True, True, False], Recorder(Backoff(60.0, 60.0)))
    worker.start()
    try:
        await wait_until(lambda: worker.calls == 3, timeout=5)
        await wait_until(lambda: worker.last_pause == 60.0, timeout=5)
        await wait_until(lambda: worker.waiting, timeout=5)  # in its pause, no wake pending
        assert worker.calls == 3  # still waiting: no fourth call without a wake
        worker.wake()
        await wait_until(lambda: worker.calls == 4, timeout=5)
    finally:
        await worker.stop()
    assert worker.stopped
    assert not worker.running


async def test_failures_back_off_doubling_to_the_cap_and_reset_after_success() -> None:
    """Each failure in a row waits longer (capped); a success tells the pacer to reset."""
    pacer = Recorder(Backoff(100.0, 400.0))
    worker = Scripted(["a", "b", "c", "d", False], pacer)
    worker.start()
    pauses: list[float | None] = []
    try:
        for calls in range(1, 5):
            await wait_until(lambda c=calls: worker.passes == c, timeout=5)  # type: ignore[misc]
            pauses.append(worker.last_pause)
            worker.wake()
        await wait_until(lambda: worker.passes == 5, timeout=5)
    finally:
        await worker.stop()
    assert pauses == [100.0, 200.0, 400.0, 400.0]
    assert pacer.errors == ["a", "b", "c", "d"]
    assert pacer.oks == 1
    assert pacer.failures == 0
    assert worker.last_pause == 60.0  # back to the idle pace


async def test_stop_ends_a_waiting_loop_at_once_and_start_twice_is_one_task() -> None:
    """stop() cancels the wait (not after the 60 s poll); a second start() adds nothing."""
    worker = Scripted([], Recorder(Backoff(1.0, 1.0)))
    worker.start()
    task = worker._task
    worker.start()
    assert worker._task is task
    await wait_until(lambda: worker.passes == 1, timeout=5)
    await asyncio.wait_for(worker.stop(), timeout=5)
    assert task is not None
    assert task.cancelled()
    await worker.stop()  # stopping a stopped worker is harmless


async def test_default_pacer_logs_and_backs_off() -> None:
    """Without a pacer, failures are logged and waited out from poll_s upward."""
    from structlog.testing import capture_logs

    class Failing(PollingWorker):
        def rounds(self) -> Sequence[Round]:
            return [self.boom]

        async def boom(self) -> bool:
            raise ValueError("boom")

    worker = Failing("failing", poll_s=30.0)
    with capture_logs() as logs:
        worker.start()
        try:
            await wait_until(lambda: worker.passes == 1, timeout=5)
        finally:
            await worker.stop()
    assert worker.last_pause is not None
    assert 24.0 <= worker.last_pause <= 30.0
    assert logs[0]["event"] == "loop round failed; retrying"
    assert logs[0]["loop"] == "failing"


def test_a_polling_thread_runs_blocking_rounds_off_the_callers_loop_and_stops() -> None:
    """A worker in a PollingThread ticks on its own loop (a blocking round is fine there),
    is woken from another thread, and stop() joins the thread."""
    import threading

    ticks = threading.Semaphore(0)

    async def tick() -> bool:
        ticks.release()
        return False

    thread = PollingThread(PollingWorker("t", poll_s=60.0, rounds=[tick]), name="t")
    thread.start()
    try:
        assert thread.alive
        assert ticks.acquire(timeout=5)  # the first pass runs at once
        thread.wake()
        assert ticks.acquire(timeout=5)  # woken: no 60 s wait
    finally:
        thread.stop(timeout=5)
    assert not thread.alive
