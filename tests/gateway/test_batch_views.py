"""The 202 of `POST /v1/batch` builds its job views without a `Job` model per job
(`job_views_json`); they must be exactly what `job_view(…).model_dump(mode="json")` gives,
in the same key order, for every kind of record a batch can answer."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.client.models import BatchResponse
from portwright.gateway.routes._views import DIRECT_VIEWS, job_view, job_views_json
from portwright.orchestrator._sealed_input import SEALED_PREFIX
from portwright.sdk import Adapter, Job, linear_machine
from portwright.store import JobRecord


class Login(BaseModel):
    user: str
    password: SecretStr


class VaultInput(BaseModel):
    url: str
    token: SecretStr
    logins: list[Login] = []


class VaultAdapter(Adapter[VaultInput]):
    name: ClassVar[str] = "vaulted"
    input_model = VaultInput
    machine = linear_machine("vaulted", ["WORKING"])

    async def run(self, job: Job[VaultInput]) -> Mapping[str, Any]:
        return {}


SEALED = SEALED_PREFIX + "c2VhbGVk"

BASE = JobRecord(
    id="job_01",
    tenant_id="t_1",
    adapter="scrape",
    adapter_version="1.0.0",
    portal="web",
    state="QUEUED",
    status="queued",
    input={"url": "http://example.test/p/1", "engine": "auto", "extract": {}, "batch_id": "b"},
    output=None,
    error_class=None,
    reason=None,
    waiting_for=None,
    lock_key=None,
    priority=0,
    paused=False,
    cancel_requested=False,
    attempts=0,
    seq=1,
    created_at=1765065600.123456,
    updated_at=1765065600.123456,
    finished_at=None,
)

RECORDS = [
    BASE,
    # every optional field set, an output, unicode and nesting in the input
    dataclasses.replace(
        BASE,
        id="job_02",
        input={"url": "http://example.test/é", "extract": {"t": {"css": "h1", "all": True}}},
        output={"results": [{"status": 200, "title": "Ünïcode"}], "credits": 1, "n": 1.5},
        error_class="transient",
        reason="retrying",
        waiting_for="otp",
        lock_key="acct-1",
        priority=7,
        paused=True,
        cancel_requested=True,
        attempts=3,
        seq=9,
        finished_at=1765065700.5,
        parent_id="job_00",
        item_key="item-3",
        notes={"chunk": "c_1"},
        trace_parent="00-abc-def-01",
    ),
    # a sealed value where the model does not type a secret: masked anyway
    dataclasses.replace(BASE, id="job_03", input={"url": SEALED, "wait_for": [SEALED, "x"]}),
    # secret fields of the adapter's model, at depth, masked
    dataclasses.replace(
        BASE,
        id="job_04",
        adapter="vaulted",
        input={"url": "u", "token": SEALED, "logins": [{"user": "a", "password": "plain"}]},
    ),
    # an adapter the registry does not know: only sealed values masked
    dataclasses.replace(BASE, id="job_05", adapter="gone", input={"token": SEALED, "a": 1}),
    # values `Job` converts (an int for a float, a bool for an int): through `job_view`
    dataclasses.replace(BASE, id="job_06", created_at=1765065600, priority=True),  # type: ignore[arg-type]
    dataclasses.replace(BASE, id="job_07", finished_at=5, attempts=False),  # type: ignore[arg-type]
]


def _registry() -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(ScrapeAdapter)
    registry.register(VaultAdapter)
    return registry


def test_the_fields_are_read_straight_off_records() -> None:
    """Else every batch answer builds a model per job again (still correct, but slow)."""
    assert DIRECT_VIEWS


@pytest.mark.parametrize("with_registry", [True, False])
def test_batch_views_are_the_job_views(with_registry: bool) -> None:
    registry = _registry() if with_registry else None
    old = BatchResponse(batch_id="bat_1", jobs=[job_view(r, registry) for r in RECORDS])
    new = {"batch_id": "bat_1", "jobs": job_views_json(RECORDS, registry)}
    # the same JSON text, key order included (JSONResponse's own encoding)
    assert json.dumps(new, ensure_ascii=False, separators=(",", ":")) == json.dumps(
        old.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")
    )
    shown = {j["id"]: j for j in new["jobs"]}
    assert shown["job_03"]["input"]["url"] == "**********"
    if with_registry:
        assert shown["job_04"]["input"]["logins"][0]["password"] == "**********"
    assert shown["job_05"]["input"]["token"] == "**********"
    assert shown["job_06"]["created_at"] == 1765065600.0
    assert isinstance(shown["job_06"]["created_at"], float)
