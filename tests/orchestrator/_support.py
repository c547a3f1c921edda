"""Adapters and helpers shared by the orchestrator tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from portwright.adapters import AdapterRegistry
from portwright.sdk import Adapter, Job, linear_machine
from portwright.testing import EchoAdapter


class EchoB(EchoAdapter):
    """The echo adapter under another name, so it is another portal with its own queue."""

    name: ClassVar[str] = "echo-b"


class AskInput(BaseModel):
    timeout_s: float = 30.0


class AskAdapter(Adapter[AskInput]):
    """Waits for a named input and returns it (or times out)."""

    name: ClassVar[str] = "ask"
    input_model = AskInput
    machine = linear_machine("ask", ["ASKING"])
    inputs: ClassVar[frozenset[str]] = frozenset({"answer"})

    async def run(self, job: Job[AskInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        value = await job.wait_for_input("answer", job.input.timeout_s, state="ASKING")
        return {"answer": value}


def registry(*adapters: type[Adapter]) -> AdapterRegistry:  # type: ignore[type-arg]
    reg = AdapterRegistry()
    for adapter in adapters or (EchoAdapter,):
        reg.register(adapter)
    return reg


class NoopInput(BaseModel):
    steps: int = 3


async def _noop(_sc: Any, index: int) -> int:
    return index


class NoopAdapter(Adapter[NoopInput]):
    """Two transitions and `steps` no-op steps: what benchmarks/orchestrator_bench.py runs."""

    name: ClassVar[str] = "noop"
    input_model = NoopInput
    machine = linear_machine("noop", ["WORKING"])

    async def run(self, job: Job[NoopInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("WORKING")
        total = 0
        for index in range(job.input.steps):
            total += await job.step("noop", _noop, index)
        return {"total": total}
