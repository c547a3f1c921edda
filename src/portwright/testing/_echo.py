"""A tiny adapter for testing the layers above the adapter seam.

`EchoAdapter` fetches the sandbox's echo page (`portwright.sandbox.echo.echo_service`)
through checkpointed steps: retries, cooldowns, escalations and crashes without a real
portal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from portwright.sdk import Adapter, Job, RetryPolicy, StepContext, linear_machine

__all__ = ["EchoAdapter", "EchoInput"]


class EchoInput(BaseModel):
    url: str = Field(description="base URL of the echo service")
    key: str = Field(min_length=1)
    steps: int = Field(1, ge=1, le=1000)
    pause_s: float = Field(0.0, ge=0.0, description="sleep between steps (crash tests)")
    lock: str | None = None


async def _fetch(sc: StepContext, url: str, key: str, index: int) -> str:
    response = await sc.http.get(url, params={"k": key, "s": str(index)})
    return sc.page(response).text("value")


class EchoAdapter(Adapter[EchoInput]):
    """Fetches the echo page `steps` times, one checkpointed step each."""

    name: ClassVar[str] = "echo"
    input_model = EchoInput
    machine = linear_machine("echo", ["FETCHING"])
    selectors: ClassVar[Mapping[str, str]] = {"value": "p.v"}
    retry = RetryPolicy(max_attempts=5, base_delay_s=0.05, max_delay_s=0.5, degraded_after=2)
    max_concurrency = 8

    def lock_key(self, data: EchoInput) -> str | None:
        return data.lock

    async def run(self, job: Job[EchoInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("FETCHING")
        values = []
        for index in range(job.input.steps):
            values.append(await job.step("fetch", _fetch, job.input.url, job.input.key, index))
            if job.input.pause_s:
                await job.sleep(job.input.pause_s)
        return {"value": values[-1], "count": len(values)}
