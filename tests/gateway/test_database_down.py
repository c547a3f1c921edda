"""The database going away under the gateway: a webhook is refused with 503 and Retry-After
(nothing half-accepted), and accepted once the database is back."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
import standardwebhooks
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.gateway import create_app
from portwright.orchestrator import JobService
from portwright.settings import Settings, WebhookSource
from portwright.testing import wait_until
from tests.conftest import _pg_admin
from tests.gateway._support import ServerThread

SECRET = "whsec_" + base64.b64encode(b"database-down-test-secret-key!!!").decode()


def _send(url: str, msg_id: str) -> httpx.Response:
    body = json.dumps({"type": "order.created", "data": {"id": msg_id}})
    signature = standardwebhooks.Webhook(SECRET).sign(msg_id, datetime.now(tz=UTC), body)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(datetime.now(tz=UTC).timestamp())),
        "webhook-signature": signature,
    }
    return httpx.post(f"{url}/v1/hooks/shop-beta", content=body, headers=headers, timeout=30)


def _allow_connections(database: str, allow: bool) -> None:
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {allow}'))
            if not allow:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                )
    finally:
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_webhook_while_the_database_is_down_is_503_and_accepted_after(
    db_url: str, settings: Settings, service_for: Callable[..., JobService]
) -> None:
    sources = {
        "shop-beta": WebhookSource(scheme="standard", secrets=[SecretStr(SECRET)], handler="record")
    }
    tuned = settings.model_copy(update={"webhook_sources": sources})
    service = service_for(AdapterRegistry(), settings=tuned)
    server = ServerThread(create_app(service, tuned)).start()
    database = db_url.rsplit("/", 1)[1]
    try:
        assert _send(server.url, "msg_before").status_code == 202
        _allow_connections(database, allow=False)
        try:
            down = _send(server.url, "msg_during")
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "5"
            assert down.json()["code"] == "unavailable"
        finally:
            _allow_connections(database, allow=True)

        async def accepted() -> httpx.Response | None:
            again = _send(server.url, "msg_during")
            return again if again.status_code != 503 else None

        again = await wait_until(accepted, timeout=30, every=0.5)
        assert again.status_code == 202, again.text  # not a duplicate: the 503 stored nothing
        stored = {r.event_id for r in service.store.inbox.search(source="shop-beta")}
        assert stored == {"msg_before", "msg_during"}
    finally:
        server.stop()
