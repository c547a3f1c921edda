"""check_determinism: a deterministic run passes; clocks, random numbers, UUIDs and a
different sequence of steps are caught and named."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from portwright.sdk import (
    Adapter,
    IllegalTransitionError,
    InputTimeoutError,
    Job,
    StepContext,
    TransientError,
    linear_machine,
)
from portwright.testing import DeterminismError, FakeJob, check_determinism

STEPS = {"search": ["a", "b"], "book": "B-1"}


class In(BaseModel):
    city: str


async def search(sc: StepContext, city: str) -> str:  # never runs: results are recorded
    raise AssertionError("check_determinism must not run steps")


async def book(sc: StepContext, slot: str) -> str:
    raise AssertionError("check_determinism must not run steps")


class Booking(Adapter[In]):
    name = "booking"
    input_model = In
    machine = linear_machine("booking", ["SEARCHING", "BOOKING"])

    async def run(self, job: Job[In]) -> dict[str, Any]:
        await job.transition("QUEUED")
        await job.transition("SEARCHING")
        first = await job.step("search", search, job.input.city)
        slot = first or await job.step("search", search, job.input.city)
        started = await job.now()  # the checkpointed clock is fine
        await job.transition("BOOKING", reason=f"slot {slot}")
        ref = await job.step("book", book, slot)
        await job.transition("SUCCEEDED")
        return {"ref": ref, "started": started}


class ClockInRun(Booking):
    async def run(self, job: Job[In]) -> dict[str, Any]:
        out = dict(await super().run(job))
        out["at"] = time.time()  # read outside a step
        return out


class CoinFlip(Booking):
    """Chooses the step's argument at random: replays would book another slot."""

    async def run(self, job: Job[In]) -> dict[str, Any]:
        await job.transition("QUEUED")
        await job.transition("SEARCHING")
        slot = random.choice(["a", "b", "c", "d", "e", "f", "g", "h"])
        return {"ref": await job.step("book", book, slot)}


class Alternating(Booking):
    """Differs between runs without any clock: module state that changes each run."""

    runs = 0

    async def run(self, job: Job[In]) -> dict[str, Any]:
        Alternating.runs += 1
        await job.transition("QUEUED")
        await job.transition("SEARCHING")
        if Alternating.runs % 2:
            await job.step("search", search, job.input.city)
        return {"ref": await job.step("book", book, "x")}


async def test_a_deterministic_run_passes_and_returns_its_trace() -> None:
    trace = await check_determinism(Booking, {"city": "Lima"}, steps=STEPS, runs=3)
    assert [c[:2] for c in trace] == [
        ("transition", "QUEUED"),
        ("transition", "SEARCHING"),
        ("step", "search"),
        ("now",),
        ("transition", "BOOKING"),
        ("step", "book"),
        ("transition", "SUCCEEDED"),
    ]
    assert trace[4][2] == "slot a"


async def test_a_clock_read_in_run_is_named_with_its_line() -> None:
    with pytest.raises(DeterminismError, match=r"time\.time\(\) at .*test_determinism\.py:\d+"):
        await check_determinism(ClockInRun, {"city": "Lima"}, steps=STEPS)


async def test_a_random_choice_in_run_is_caught() -> None:
    with pytest.raises(DeterminismError, match=r"random\.choice\(\)"):
        await check_determinism(CoinFlip, {"city": "Lima"}, steps=STEPS)


async def test_a_different_sequence_of_steps_is_named() -> None:
    with pytest.raises(DeterminismError, match=r"call #3 differs.*'search'.*'book'") as raised:
        await check_determinism(Alternating, {"city": "Lima"}, steps=STEPS)
    assert "Alternating.run is not deterministic" in str(raised.value)


async def test_a_step_without_a_recorded_result_is_named() -> None:
    with pytest.raises(DeterminismError, match=r"step 'book' but no recorded result"):
        await check_determinism(Booking, {"city": "Lima"}, steps={"search": "a"})


async def test_fake_job_checks_transitions_raises_recorded_errors_and_times_out() -> None:
    job = FakeJob(Booking, {"city": "Lima"}, steps={"search": TransientError("down")})
    await job.transition("QUEUED")
    with pytest.raises(IllegalTransitionError):
        await job.transition("BOOKING")
    await job.transition("SEARCHING")
    with pytest.raises(TransientError, match="down"):
        await job.step("search", search, "Lima")
    with pytest.raises(InputTimeoutError):
        await job.wait_for_input("otp", 60)
    answered = FakeJob(Booking, {"city": "Lima"}, inputs={"otp": "123"})
    assert await answered.wait_for_input("otp", 60) == "123"
    assert await answered.spawn("child", [("k1", {"x": 1})]) == ["job-test:k1"]
    await answered.alert("slow", "taking long")
    assert [c[0] for c in answered.trace] == ["wait_for_input", "spawn", "alert"]


async def test_clock_reads_of_other_threads_are_not_blamed_on_run() -> None:
    """While `run` runs, another thread of the process reads the clock."""
    go, done = threading.Event(), threading.Event()

    class MeanwhileElsewhere(Booking):
        async def run(self, job: Job[In]) -> dict[str, Any]:
            go.set()
            assert done.wait(5)  # the other thread read the clock while run was running
            done.clear()
            return await super().run(job)

    def other() -> None:
        for _ in range(2):  # once per replay
            assert go.wait(5)
            go.clear()
            time.time()
            done.set()

    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    try:
        await check_determinism(MeanwhileElsewhere, {"city": "Lima"}, steps=STEPS)
    finally:
        go.set()
        thread.join(timeout=5)
