"""Endpoint signing secrets are sealed at rest (the vault), opened only to sign a send."""

from __future__ import annotations

import base64
import json

import httpx
import sqlalchemy as sa
import standardwebhooks

from portwright.delivery import new_secret
from portwright.delivery._signing import SEALED_PREFIX, seal_stored_secrets
from portwright.resources.vault._vault import SEALED_TEXT
from portwright.store import DeliveryFilter
from portwright.store._schema import webhook_endpoints
from portwright.testing import wait_until
from tests.delivery.conftest import Stack


def _get(url: str, **kw: object) -> httpx.Response:
    return httpx.get(url, **kw)  # type: ignore[arg-type]


def _post(url: str, **kw: object) -> httpx.Response:
    return httpx.post(url, **kw)  # type: ignore[arg-type]


def _create(stack: Stack, auth: dict[str, str], topics: list[str]) -> dict[str, str]:
    created = _post(f"{stack.base_url}/v1/webhook-endpoints", headers=auth,
                    json={"url": stack.receiver.url, "topics": topics})  # fmt: skip
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    return body


def _raw_secrets(stack: Stack, endpoint_id: str) -> list[str]:
    """The `secrets` column as the database holds it (no repository in between)."""
    store = stack.service.store
    with store.engine.connect() as conn:
        raw = conn.execute(
            sa.select(sa.cast(webhook_endpoints.c.secrets, sa.Text)).where(
                webhook_endpoints.c.id == endpoint_id
            )
        ).scalar_one()
    values: list[str] = json.loads(raw)
    assert isinstance(values, list)
    return values


def _assert_sealed(stack: Stack, endpoint_id: str, *plain: str) -> None:
    raw = _raw_secrets(stack, endpoint_id)
    assert raw
    assert all(v.startswith(SEALED_PREFIX) for v in raw), raw
    text = json.dumps(raw)
    for secret in plain:  # neither the secret nor its key bytes, in any encoding we know
        key = base64.b64decode(secret.removeprefix("whsec_"))
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text
        assert key.hex() not in text


async def _job_events_verify(stack: Stack, key: str, tenant_id: str, *secrets: str) -> None:
    """Run a job; every delivery of its events verifies under each of `secrets`."""
    stack.receiver.received.clear()
    job = await stack.service.submit(
        tenant_id=tenant_id, adapter="echo", input={"url": stack.echo_url, "key": job_key()}
    )

    def finished() -> bool:
        return any(
            json.loads(b)["data"].get("job_id") == job.id
            and json.loads(b)["data"].get("status") == "succeeded"
            for _, b in stack.receiver.received
        )

    await wait_until(finished, timeout=30)
    for secret in secrets:
        verifier = standardwebhooks.Webhook(secret)
        for headers, body in stack.receiver.received:
            assert verifier.verify(body.decode(), headers)["data"]["job_id"] == job.id


_counter = iter(range(10_000))


def job_key() -> str:
    return f"k{next(_counter)}"


async def test_endpoint_secrets_are_sealed_in_the_row_and_deliveries_still_verify(
    stack: Stack,
) -> None:
    """The API returns the secret once; the row holds only `pwsec1:` ciphertext (read
    straight from the table); deliveries verify with standardwebhooks under that secret;
    after a rotation both secrets are sealed and both verify."""
    assert SEALED_PREFIX == SEALED_TEXT
    key, tenant_id = stack.new_key()
    auth = {"authorization": f"Bearer {key}"}
    created = _create(stack, auth, ["job.*"])
    endpoint_id, secret = created["id"], created["secret"]
    assert secret.startswith("whsec_")
    _assert_sealed(stack, endpoint_id, secret)
    listed = _get(f"{stack.base_url}/v1/webhook-endpoints", headers=auth).json()
    assert "secret" not in listed["data"][0]
    assert "secrets" not in listed["data"][0]
    await _job_events_verify(stack, key, tenant_id, secret)

    rotated = _post(f"{stack.base_url}/v1/webhook-endpoints/{endpoint_id}/rotate",
                         headers=auth)  # fmt: skip
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["secret"]
    _assert_sealed(stack, endpoint_id, secret, fresh)
    assert len(_raw_secrets(stack, endpoint_id)) == 2
    await _job_events_verify(stack, key, tenant_id, fresh, secret)


async def test_rows_written_in_clear_still_sign_and_are_sealed_in_place(stack: Stack) -> None:
    """An endpoint stored before sealing (plain whsec_ in the row) still signs deliveries;
    the data migration run at gateway start (`seal_stored_secrets`) seals it in place,
    once, and deliveries keep verifying under the same secret."""
    store = stack.service.store
    key, tenant_id = stack.new_key()
    secret = new_secret()
    legacy = store.endpoints.create(tenant_id=tenant_id, url=stack.receiver.url,
                                    secrets=[secret], topics=["job.*"])  # fmt: skip
    assert _raw_secrets(stack, legacy.id) == [secret]
    await _job_events_verify(stack, key, tenant_id, secret)
    vault = stack.delivery.relay.sealer
    assert vault is not None
    assert seal_stored_secrets(store, vault) >= 1
    assert seal_stored_secrets(store, vault) == 0  # nothing left in clear
    _assert_sealed(stack, legacy.id, secret)
    await _job_events_verify(stack, key, tenant_id, secret)


async def test_a_sealed_secret_copied_to_another_endpoint_does_not_sign(stack: Stack) -> None:
    """A sealed secret is bound to its endpoint: pasted into another endpoint's row it does
    not open, so that endpoint's deliveries fail (visibly) instead of signing with it."""
    store = stack.service.store
    key, tenant_id = stack.new_key()
    auth = {"authorization": f"Bearer {key}"}
    first = _create(stack, auth, ["nothing.*"])
    second = _create(stack, auth, ["job.*"])
    stolen = _raw_secrets(stack, first["id"])
    with store.engine.begin() as conn:
        conn.execute(webhook_endpoints.update().where(webhook_endpoints.c.id == second["id"])
                     .values(secrets=stolen))  # fmt: skip
    stack.receiver.received.clear()
    await stack.service.submit(tenant_id=tenant_id, adapter="echo",
                               input={"url": stack.echo_url, "key": job_key()})  # fmt: skip

    def errors() -> list[str]:
        out = []
        where = DeliveryFilter(tenant_id=tenant_id, endpoint_id=second["id"])
        for delivery in store.deliveries.search(where):
            out += [a.error or "" for a in store.deliveries.attempts(delivery.id)]
        return out

    await wait_until(lambda: any("does not open" in e for e in errors()), timeout=30)
    assert stack.receiver.received == []
