"""Outbound webhooks: outbox → relay → Standard-Webhooks-signed sends, retries, dead letters."""

from __future__ import annotations

import json

import httpx
import standardwebhooks

from portwright.testing import wait_until
from tests.delivery.conftest import Stack


def _get(url: str, **kw: object) -> httpx.Response:
    return httpx.get(url, **kw)  # type: ignore[arg-type]


def _post(url: str, **kw: object) -> httpx.Response:
    return httpx.post(url, **kw)  # type: ignore[arg-type]


def _endpoint(stack: Stack, key: str, **body: object) -> dict[str, object]:
    response = _post(
        f"{stack.base_url}/v1/webhook-endpoints",
        json={"url": stack.receiver.url, **body},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


async def test_job_events_arrive_signed_and_retries_keep_the_webhook_id(stack: Stack) -> None:
    """A job's transitions reach the endpoint signed (verified by standardwebhooks); a 503 with
    Retry-After is retried and the retry carries the same webhook-id."""
    key, tenant_id = stack.new_key()
    endpoint = _endpoint(stack, key, topics=["job.*"])
    stack.receiver.plan = [503]
    stack.receiver.retry_after = "0"
    job = await stack.service.submit(
        tenant_id=tenant_id, adapter="echo", input={"url": stack.echo_url, "key": "k1"}
    )

    def done() -> bool:
        received = stack.receiver.received
        finished = any(json.loads(b)["data"].get("status") == "succeeded" for _, b in received)
        return finished and len(received) == len({h["webhook-id"] for h, _ in received}) + 1

    await wait_until(done, timeout=30)
    verifier = standardwebhooks.Webhook(str(endpoint["secret"]))
    ids = []
    for headers, body in stack.receiver.received:
        payload = verifier.verify(body.decode(), headers)
        assert payload["data"]["job_id"] == job.id
        ids.append(headers["webhook-id"])
    assert len(ids) > len(set(ids)), "the failed first send was retried"
    seqs = sorted(int(i.rsplit(":", 1)[1]) for i in set(ids))
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no job event went missing"


async def test_dead_letters_are_visible_and_replay_delivers_them(stack: Stack) -> None:
    """After its attempt budget a delivery is dead, its attempts are listed, and a replay
    by endpoint delivers it with the same webhook-id."""
    key, tenant_id = stack.new_key()
    endpoint = _endpoint(stack, key, max_attempts=2)
    stack.receiver.plan = [500, 500]
    stack.service.store.outbox.append(
        event_id="evt-dead-1", topic="order.created", tenant_id=tenant_id, payload={"n": 1}
    )
    stack.delivery.wake()
    auth = {"authorization": f"Bearer {key}"}

    def dead() -> list[dict[str, object]]:
        r = _get(f"{stack.base_url}/v1/deliveries", params={"status": "dead"}, headers=auth)
        rows: list[dict[str, object]] = r.json()["data"]
        return rows

    await wait_until(lambda: len(dead()) == 1, timeout=20)
    delivery = dead()[0]
    attempts = _get(
        f"{stack.base_url}/v1/deliveries/{delivery['id']}/attempts", headers=auth
    ).json()["data"]
    assert [a["status_code"] for a in attempts] == [500, 500]
    replay = _post(
        f"{stack.base_url}/v1/dead-letters/replay",
        json={"endpoint_id": endpoint["id"]},
        headers=auth,
    )
    assert replay.json() == {"replayed": 1}
    await wait_until(lambda: len(stack.receiver.received) == 3, timeout=20)
    assert {h["webhook-id"] for h, _ in stack.receiver.received} == {"evt-dead-1"}
    assert (
        _get(f"{stack.base_url}/v1/deliveries", headers=auth).json()["data"][0]["status"]
        == "delivered"
    )
