"""Retention on a fake clock: each data kind is purged exactly when it is due (HTML 24 h,
job metadata 30 d, usage 90 d), in bounded batches, with blobs, a metric and an audit
event; a running job's evidence is never purged however old."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from portwright.observability import PROCESS
from portwright.results import Housekeeper
from portwright.sdk import Adapter, Job, StepContext, linear_machine
from portwright.settings import RetentionConfig
from portwright.store import DeliveryFilter, JobNotFoundError, Store
from portwright.testing import InMemoryBlobStore, wait_until_sync
from tests.results.conftest import BIG_HTML, Stack

HOUR, DAY = 3600.0, 86_400.0


class HoldInput(BaseModel):
    note: str = ""


async def _keep(sc: StepContext) -> str:
    await sc.attach("html", b"<html>held by a running job</html>", content_type="text/html")
    return await sc.attach("screenshot", b"\x89PNG fake", content_type="image/png")


class Holder(Adapter[HoldInput]):
    """Stores a page and a screenshot, then waits for input for an hour: a running job."""

    name: ClassVar[str] = "holder"
    input_model = HoldInput
    machine = linear_machine("holder", ["KEEPING", "WAITING"])
    inputs: ClassVar[frozenset[str]] = frozenset({"go"})

    async def run(self, job: Job[HoldInput]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("KEEPING")
        await job.step("keep", _keep)
        await job.wait_for_input("go", 3600, state="WAITING")
        return {}


def _purged(kind: str) -> float:
    return PROCESS.purged_rows.labels(kind)._value.get()


def test_retention_purges_exactly_what_is_due_and_nothing_a_running_job_holds(
    make_stack: Callable[..., Stack],
) -> None:
    """Kinds purge at their own ages; batches are bounded; the waiting job, its evidence
    and its finished child stay through every purge."""
    stack = make_stack(Holder)
    store, blobs = stack.service.store, stack.service.rt.blobs
    client, tenant_id = stack.tenant()
    stack.endpoint(client)
    hook = stack.receiver.url
    big = client.post("/v1/scrape", json={"url": f"{stack.pages_url}/big", "webhook": hook})
    smalls = [
        client.post("/v1/scrape", json={"url": f"{stack.pages_url}/page/{i}"}) for i in (1, 2)
    ]
    finished = [big.json()["id"], *(r.json()["id"] for r in smalls)]
    holder = asyncio.run(stack.service.submit(tenant_id=tenant_id, adapter="holder", input={}))
    child = asyncio.run(  # a finished item of the waiting job: its parent still counts it
        stack.service.submit(
            tenant_id=tenant_id,
            adapter="scrape",
            input={"url": f"{stack.pages_url}/page/9"},
            parent_id=holder.id,
        )
    )
    wait_until_sync(
        lambda: all(store.jobs.get(j).finished_at for j in [*finished, child.id]), timeout=60
    )
    wait_until_sync(lambda: store.jobs.get(holder.id).status == "waiting", timeout=60)
    where = DeliveryFilter(tenant_id=tenant_id)
    wait_until_sync(
        lambda: [d.status for d in store.deliveries.search(where)] == ["delivered"], timeout=60
    )
    big_html = next(e for e in store.jobs.evidence(finished[0]) if e.kind == "html")
    held = {e.kind: e for e in store.jobs.evidence(holder.id)}
    assert set(held) == {"html", "screenshot"}
    ended = max(store.jobs.get(j).finished_at or 0 for j in finished)
    t0 = max(ended, time.time())
    keeper = Housekeeper(store, blobs, RetentionConfig(batch_rows=1))
    html_before = _purged("html")

    # 23 h on: nothing is due yet
    assert keeper.purge(t0 + 23 * HOUR).purged == {}
    # 25 h on: the finished job's stored page goes (with its blob); the waiting job's stays
    report = keeper.purge(t0 + 25 * HOUR)
    assert report.purged == {"html": {"rows": 1, "bytes": len(BIG_HTML.encode())}}
    assert _purged("html") == html_before + 1
    with pytest.raises(KeyError):
        blobs.get(big_html.blob_key)
    assert blobs.get(held["html"].blob_key)
    assert {e.kind for e in store.jobs.evidence(holder.id)} == {"html", "screenshot"}
    # 8 days on: no screenshot of a finished job; the waiting job's is kept
    assert keeper.purge(t0 + 8 * DAY).purged == {}
    # 31 days on: finished jobs, their deliveries and outbox go, one batch row at a time
    first = keeper.purge_round(t0 + 31 * DAY)
    assert {kind: c["rows"] for kind, c in first.items()} == {
        "jobs": 1,
        "deliveries": 1,
        "outbox": 1,
    }
    report = keeper.purge(t0 + 31 * DAY)
    assert report.purged["jobs"]["rows"] == 2
    assert "deliveries" not in report.purged
    assert report.purged["outbox"]["rows"] >= len(finished) * 3 - 1
    assert "usage" not in report.purged
    for job_id in finished:
        with pytest.raises(JobNotFoundError):
            store.jobs.get(job_id)
    assert store.deliveries.search(where) == []
    # 91 days on: usage of the finished jobs goes
    report = keeper.purge(t0 + 91 * DAY)
    assert report.purged["usage"]["rows"] == len(finished)
    # through all of it the waiting job and everything it stored are intact
    assert store.jobs.get(holder.id).status == "waiting"
    assert store.jobs.get(child.id).status == "succeeded"
    assert {e.kind for e in store.jobs.evidence(holder.id)} == {"html", "screenshot"}
    assert blobs.get(held["screenshot"].blob_key) == b"\x89PNG fake"
    audits = [a for a in store.audit.search(limit=500) if a.action == "retention.purge"]
    assert len(audits) == 3  # one per purge run that purged anything (25 h, 31 d, 91 d)
    assert audits[-1].after == {"purged": {"html": {"rows": 1, "bytes": len(BIG_HTML)}}, "moved": 0}


def test_processed_inbound_webhooks_are_purged_when_due_and_pending_ones_never(
    db_url: str,
) -> None:
    """The inbox kind: a processed event goes 30 days after it was processed; one still
    pending (its processing not done) stays however old; bytes count the payloads."""
    store = Store.open(db_url)
    try:
        done, _ = store.inbox.add(
            source="shop", external_id="", event_id="e1", checksum="c1",
            payload=b"x" * 100, event_type="order", tenant_id=None,
        )  # fmt: skip
        pending, _ = store.inbox.add(
            source="shop", external_id="", event_id="e2", checksum="c2",
            payload=b"y" * 50, event_type="order", tenant_id=None,
        )  # fmt: skip
        store.inbox.finish(done.id, status="done", result="ok")
        keeper = Housekeeper(store, InMemoryBlobStore(), RetentionConfig())
        t0 = time.time()
        assert keeper.purge(t0 + 29 * DAY).purged == {}
        assert keeper.purge(t0 + 31 * DAY).purged == {"inbox": {"rows": 1, "bytes": 100}}
        assert keeper.purge(t0 + 400 * DAY).purged == {}
        assert [r.id for r in store.inbox.search()] == [pending.id]
    finally:
        store.close()
