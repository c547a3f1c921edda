"""Versions of one small adapter over the sandbox echo page, for the rollout tests.

`site` v1 reads the value with a selector that survives the markup switch (`p.v` or
`p.w`); v2 (a candidate) only knows `p.v`, so switching the page's markup breaks v2
alone; v3 (a candidate) is a shadow that tries to write. Each reports its version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar

from dbos import DBOS
from pydantic import BaseModel

from portwright.sdk import Adapter, Job, ShadowTolerance, StepContext, linear_machine
from portwright.testing import EchoAdapter, EchoInput


async def fetch(sc: StepContext, url: str, key: str, index: int) -> str:
    response = await sc.http.get(url, params={"k": key, "s": str(index)})
    return sc.page(response).text("value")


async def fetch_and_write(sc: StepContext, url: str, key: str, index: int) -> str:
    await sc.http.post(url, data={"k": key})  # a side effect: refused in a shadow
    return await fetch(sc, url, key, index)


class SiteV1(EchoAdapter):
    name: ClassVar[str] = "site"
    version: ClassVar[str] = "1"
    selectors: ClassVar[Mapping[str, str]] = {"value": "p.v, p.w"}
    read_only_steps: ClassVar[Mapping[str, Any]] = {"fetch": fetch}

    async def probe(self, sc: StepContext, data: EchoInput) -> Any:
        # The page's ledger records which tick asked (the scheduled workflow's id): the
        # two-worker test counts the runs of each tick.
        tick = DBOS.workflow_id or "manual"
        response = await sc.http.get(data.url, params={"k": data.key, "s": tick})
        return sc.page(response).text("value")

    async def run(self, job: Job[EchoInput]) -> Mapping[str, Any]:
        out = await super().run(job)
        return {**out, "version": type(self).version}


class SiteV2(SiteV1):
    version: ClassVar[str] = "2"
    candidate: ClassVar[bool] = True
    retry_on_rollback: ClassVar[bool] = True  # its run is safe to start over
    selectors: ClassVar[Mapping[str, str]] = {"value": "p.v"}


class SiteV2Held(SiteV2):
    """v2 whose `run` is not safe to start over: after a rollback its parked jobs wait."""

    retry_on_rollback: ClassVar[bool] = False


class SiteV3(SiteV1):
    version: ClassVar[str] = "3"
    candidate: ClassVar[bool] = True
    read_only_steps: ClassVar[Mapping[str, Any]] = {"fetch": fetch_and_write}


async def fetch_hiding_writes(sc: StepContext, url: str, key: str, index: int) -> str:
    """Tries each kind of side effect, swallows each refusal, and returns what live does."""
    attempts = (
        lambda: sc.http.post(url, data={"k": key}),
        lambda: sc.http.delete(url),
        lambda: sc.remember("seen", key),
        lambda: sc.observe("value", url, {"k": key}),
        lambda: sc.attach("page", "<p/>", content_type="text/html"),
    )
    for attempt in attempts:
        with contextlib.suppress(Exception):
            await attempt()
    return await fetch(sc, url, key, index)


class SiteV4(SiteV1):
    """A shadow that hides its attempted writes: it still agrees on the value."""

    version: ClassVar[str] = "4"
    candidate: ClassVar[bool] = True
    read_only_steps: ClassVar[Mapping[str, Any]] = {"fetch": fetch_hiding_writes}


class AskInput(BaseModel):
    timeout_s: float = 60.0


class PinnedAsk(Adapter[AskInput]):
    """Waits for an answer and returns it with its own version."""

    name: ClassVar[str] = "pinned"
    input_model = AskInput
    machine = linear_machine("pinned", ["ASKING"])
    inputs: ClassVar[frozenset[str]] = frozenset({"answer"})

    async def run(self, job: Job[AskInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        value = await job.wait_for_input("answer", job.input.timeout_s, state="ASKING")
        return {"answer": value, "version": type(self).version}


class PinnedAskV2(PinnedAsk):
    version: ClassVar[str] = "2"
    candidate: ClassVar[bool] = True


async def read_stamped(sc: StepContext, url: str, key: str) -> dict[str, Any]:
    return {"value": await fetch(sc, url, key, 0), "served_by": "live"}


async def read_stamped_elsewhere(sc: StepContext, url: str, key: str) -> dict[str, Any]:
    return {"value": await fetch(sc, url, key, 0), "served_by": "shadow"}


async def read_stamped_wrong(sc: StepContext, url: str, key: str) -> dict[str, Any]:
    return {"value": "not " + await fetch(sc, url, key, 0), "served_by": "shadow"}


class StampedV1(EchoAdapter):
    """Its read-only step's output carries a `served_by` stamp that differs between
    versions by design: its shadow comparison ignores that key."""

    name: ClassVar[str] = "stamped"
    version: ClassVar[str] = "1"
    read_only_steps: ClassVar[Mapping[str, Any]] = {"read": read_stamped}
    shadow_tolerance: ClassVar[Mapping[str, ShadowTolerance]] = {
        "read": ShadowTolerance(ignore={"served_by"})
    }

    async def run(self, job: Job[EchoInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("FETCHING")
        out: dict[str, Any] = await job.step("read", read_stamped, job.input.url, job.input.key)
        return out


class StampedV2(StampedV1):
    version: ClassVar[str] = "2"
    candidate: ClassVar[bool] = True
    read_only_steps: ClassVar[Mapping[str, Any]] = {"read": read_stamped_elsewhere}


class StampedV3(StampedV1):
    version: ClassVar[str] = "3"
    candidate: ClassVar[bool] = True
    read_only_steps: ClassVar[Mapping[str, Any]] = {"read": read_stamped_wrong}
