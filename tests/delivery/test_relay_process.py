"""`python -m portwright.delivery` on its own: killed mid-flight, a second relay finishes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest
import standardwebhooks
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portwright.delivery import new_secret
from portwright.delivery._signing import seal_endpoint_secret
from portwright.resources.vault import MasterKey, Vault
from portwright.settings import Settings
from portwright.store import DeliveryFilter, Store
from portwright.testing import wait_until
from tests.gateway._support import ServerThread

EVENTS = 120
HOLD_AFTER = 30  # the receiver holds every request after this many until the kill


class HoldingReceiver:
    """Records each webhook on arrival; past `HOLD_AFTER` it answers only once released,
    so the first relay is certainly mid-flight when it is killed."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.release = threading.Event()
        self.lock = threading.Lock()

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            body = await request.body()
            with self.lock:
                self.received.append((dict(request.headers), body))
                hold = len(self.received) > HOLD_AFTER
            if hold:
                await asyncio.to_thread(self.release.wait, 120)
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


MASTER_KEY = MasterKey.generate()


def _relay(db_url: str, allow: str, data_dir: Path) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PORTWRIGHT_DATABASE_URL": db_url,
        "PORTWRIGHT_DATA_DIR": str(data_dir),
        "PORTWRIGHT_MASTER_KEY": MASTER_KEY,  # opens the endpoint's sealed secret
        "PORTWRIGHT_URL_ALLOWLIST": json.dumps([allow]),
        "PORTWRIGHT_LOG_JSON": "true",
    }
    env.pop("PORTWRIGHT_NATS_URL", None)
    args = ["--lease-s", "2", "--poll-s", "0.1", "--batch", "20", "--timeout-s", "30"]
    with (data_dir / "relay.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "portwright.delivery", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


# Several relays at once is the Postgres deployment (row locks, leases): run it there only.
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_killed_relay_loses_no_event_and_duplicates_keep_their_webhook_id(
    db_url: str, tmp_path: Path
) -> None:
    """A relay process SIGKILLed with sends in flight loses nothing: a second relay delivers
    every event, each repeat carries the same webhook-id, every signature verifies with the
    standardwebhooks library (the endpoint's secret sealed at rest, opened by each relay's
    vault), and SIGTERM stops the second relay cleanly."""
    store = Store.open(Settings(database_url=db_url).app_database_url)
    receiver = HoldingReceiver()
    server = ServerThread(receiver.app()).start()
    first = second = None
    try:
        tenant = store.tenants.ensure("relay-kill")
        secret = new_secret()
        sealed = seal_endpoint_secret(Vault(MasterKey(MASTER_KEY), store=store), tenant.id,
                                      "wep_relay_kill", secret)  # fmt: skip
        store.endpoints.create(
            tenant_id=tenant.id, url=f"{server.url}/hook", secrets=[sealed], max_attempts=20,
            endpoint_id="wep_relay_kill",
        )  # fmt: skip
        for n in range(EVENTS):
            store.outbox.append(
                event_id=f"evt-kill-{n:03d}", topic="job.updated", tenant_id=tenant.id,
                payload={"n": n},
            )  # fmt: skip
        allow = server.url.removeprefix("http://")
        first = _relay(db_url, allow, tmp_path / "relay-1")
        await wait_until(lambda: len(receiver.received) > HOLD_AFTER + 5, timeout=60)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
        sent_before_kill = {h["webhook-id"] for h, _ in receiver.received}
        receiver.release.set()

        second = _relay(db_url, allow, tmp_path / "relay-2")
        wanted = {f"evt-kill-{n:03d}" for n in range(EVENTS)}

        def all_delivered() -> bool:
            got = {h["webhook-id"] for h, _ in receiver.received}
            rows = store.deliveries.search(DeliveryFilter(tenant_id=tenant.id))
            statuses = {d.status for d in rows}
            return got >= wanted and statuses == {"delivered"}

        await wait_until(all_delivered, timeout=90)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, (tmp_path / "relay-2" / "relay.log").read_text()
    finally:
        receiver.release.set()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        server.stop()
        store.close()

    verifier = standardwebhooks.Webhook(secret)
    sends: dict[str, list[bytes]] = defaultdict(list)
    for headers, body in receiver.received:
        payload = verifier.verify(body.decode(), headers)
        assert payload["data"]["event_id"] == headers["webhook-id"]
        sends[headers["webhook-id"]].append(body)
    assert set(sends) == wanted, "every event reached the receiver"
    repeated = {i for i, bodies in sends.items() if len(bodies) > 1}
    assert repeated, "sends in flight at the kill were sent again"
    assert repeated <= sent_before_kill, "only sends the kill interrupted were repeated"
    assert all(len(set(sends[i])) == 1 for i in repeated), "a repeat is the same message"
