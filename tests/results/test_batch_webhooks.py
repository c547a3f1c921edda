"""Result webhooks: a 1,000-URL batch with a webhook delivers 1,000 signed results and one
batch event to a loopback receiver (verified with the `standardwebhooks` library); the
items that ran in chunks and the ones that left them (failures) both deliver."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from portwright.testing import wait_until_sync
from tests.results.conftest import Stack

ITEMS = 1000
MISSING = 10  # items whose page is a 404: they leave their chunk and fail on their own


def _verified(stack: Stack, secret: str) -> list[dict[str, Any]]:
    hook = Webhook(secret)
    return [hook.verify(body, headers) for headers, body in list(stack.receiver.received)]


@pytest.mark.timeout(1500)  # 1,000 fetches and 1,001 deliveries on a loaded machine
def test_a_1000_url_batch_delivers_1000_signed_results_and_one_batch_event(
    stack: Stack,
) -> None:
    """Every item's result arrives once, signed with the endpoint's secret, with its status;
    the batch event arrives once, after the last item, with the counts."""
    client, tenant_id = stack.tenant()
    secret = stack.endpoint(client)
    items = [{"url": f"{stack.pages_url}/page/{i}"} for i in range(ITEMS - MISSING)]
    items += [{"url": f"{stack.pages_url}/gone"} for _ in range(MISSING)]
    reply = client.post("/v1/batch", json={"items": items, "webhook": stack.receiver.url})
    assert reply.status_code == 202, reply.text
    batch_id = reply.json()["batch_id"]
    job_ids = {job["id"] for job in reply.json()["jobs"]}

    def batch_event_arrived() -> bool:
        return any(b'"batch.completed"' in body for _, body in stack.receiver.received)

    wait_until_sync(batch_event_arrived, timeout=1200, every=0.5)
    delivery = stack.service.rt.store  # the relay has nothing left to send for the tenant
    wait_until_sync(
        lambda: (
            not [
                d
                for d in delivery.deliveries.search(_tenant_filter(tenant_id), limit=5000)
                if d.status != "delivered"
            ]
        ),
        timeout=120,
    )
    events = _verified(stack, secret)
    results = [e for e in events if e["type"] == "job.result"]
    batches = [e for e in events if e["type"] == "batch.completed"]
    assert len(batches) == 1
    assert batches[0]["data"] == {
        **batches[0]["data"],
        "batch_id": batch_id,
        "total": ITEMS,
        "succeeded": ITEMS - MISSING,
        "failed": MISSING,
        "cancelled": 0,
    }
    assert len(results) == ITEMS
    assert {r["data"]["job_id"] for r in results} == job_ids
    statuses = Counter(r["data"]["status"] for r in results)
    assert statuses == {"succeeded": ITEMS - MISSING, "failed": MISSING}
    one = next(r["data"] for r in results if r["data"]["status"] == "succeeded")
    assert one["batch_id"] == batch_id
    assert one["output"]["html"].startswith("<html>")
    # every result is signed with the endpoint's secret, and nothing else was sent
    assert len(stack.receiver.received) == ITEMS + 1
    # the batch event was written after every result (its outbox cursor is the last);
    # the relay sends concurrently, so arrival order is not the proof
    assert batches[0]["data"]["cursor"] > max(r["data"]["cursor"] for r in results)


def _tenant_filter(tenant_id: str) -> Any:
    from portwright.store import DeliveryFilter

    return DeliveryFilter(tenant_id=tenant_id)


def test_a_webhook_must_be_one_of_the_tenants_endpoints(stack: Stack) -> None:
    """A webhook URL the tenant has not registered (so no secret signs it) is 422 naming the
    field, on /v1/scrape and /v1/batch; a registered one is accepted and its single
    scrape's result arrives signed."""
    client, _ = stack.tenant()
    url = f"{stack.pages_url}/page/1"
    refused = client.post("/v1/scrape", json={"url": url, "webhook": stack.receiver.url})
    assert refused.status_code == 422
    assert refused.json()["fields"][0]["field"] == "webhook"
    refused = client.post(
        "/v1/batch", json={"items": [{"url": url}], "webhook": stack.receiver.url}
    )
    assert refused.status_code == 422
    assert refused.json()["fields"][0]["field"] == "webhook"
    secret = stack.endpoint(client)
    job = client.post("/v1/scrape", json={"url": url, "webhook": stack.receiver.url}).json()
    wait_until_sync(lambda: stack.receiver.received, timeout=60)
    (event,) = _verified(stack, secret)
    assert event["type"] == "job.result"
    assert event["data"]["job_id"] == job["id"]
    assert event["data"]["status"] == "succeeded"


def test_a_large_result_arrives_with_a_result_url_that_downloads_it(stack: Stack) -> None:
    """The webhook of a scrape whose page is over the inline limit carries a signed
    result_url instead of the body; it downloads the page."""
    client, _ = stack.tenant()
    secret = stack.endpoint(client)
    client.post("/v1/scrape", json={"url": f"{stack.pages_url}/big", "webhook": stack.receiver.url})
    wait_until_sync(lambda: stack.receiver.received, timeout=60)
    (event,) = _verified(stack, secret)
    output = event["data"]["output"]
    assert output["html"] is None
    download = httpx.get(f"{stack.base_url}{output['result_url']}")
    assert download.status_code == 200
    assert b"row 399 of the big page" in download.content
