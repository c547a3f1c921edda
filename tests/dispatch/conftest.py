"""Dispatch fixtures: the two sandbox shops, a runtime and its gateway on loopback, two tenants.

shop-alpha's orders belong to tenant acme, shop-beta's to globex; each shop's
webhooks go to this gateway, and each tenant syncs statuses back to its shop
through a `shop-status` endpoint it creates through the API.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.apps.dispatch import SYNC_TOPICS
from portwright.console import hash_password
from portwright.delivery import DeliveryPolicy
from portwright.gateway import create_app, issue_key
from portwright.orchestrator import JobService
from portwright.sandbox import SandboxWorld
from portwright.sandbox.shops import specs
from portwright.settings import Settings, WebhookSource
from portwright.store import Store
from tests.gateway._support import ServerThread

TENANTS = {"shop-alpha": "acme", "shop-beta": "globex"}
POLICY = DeliveryPolicy(base_s=0.2, max_s=1.0, breaker_threshold=3, breaker_open_s=2.0)
TIMEOUT = httpx.Timeout(30.0)
PASSWORD = "correct horse battery"


@dataclass
class Dispatch:
    service: JobService
    server: ServerThread
    world: SandboxWorld
    keys: dict[str, str]  # tenant name → API key
    tenant_ids: dict[str, str]  # tenant name → id

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> Store:
        return self.service.store

    def api(self, tenant: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.keys[tenant]}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=TIMEOUT, **kw)

    def add_drivers(self, tenant: str, *driver_ids: str) -> None:
        for driver_id in driver_ids:
            r = self.api(tenant, "PUT", f"/v1/drivers/{driver_id}", json={"name": driver_id})
            assert r.status_code == 200, r.text

    def add_sync(self, shop: str, *, max_attempts: int = 4) -> str:
        body = {
            "url": self.world.url(shop),
            "kind": "shop-status",
            "platform": shop,
            "topics": list(SYNC_TOPICS),
            "max_attempts": max_attempts,
        }
        r = self.api(TENANTS[shop], "POST", "/v1/webhook-endpoints", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def shop(self, shop: str, path: str, **body: Any) -> dict[str, Any]:
        r = httpx.post(f"{self.world.url(shop)}{path}", json=body, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def shop_orders(self, shop: str, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The shop's own view of these orders (its order API, one connection)."""
        found = {}
        with httpx.Client(base_url=self.world.url(shop), timeout=TIMEOUT) as client:
            for order_id in order_ids:
                r = client.get(f"/api/orders/{order_id}")
                assert r.status_code == 200, r.text
                found[order_id] = r.json()
        return found

    def dashboard(self, tenant: str) -> str:
        """The console dashboard's HTML, as a viewer limited to `tenant` sees it."""
        email = f"viewer-{secrets.token_hex(3)}@example.test"
        self.store.console.create_operator(
            email=email, password_hash=hash_password(PASSWORD), role="viewer",
            tenant_id=self.tenant_ids[tenant],
        )  # fmt: skip
        with httpx.Client(base_url=self.url, timeout=TIMEOUT) as http:
            token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/console/login").text)
            assert token is not None
            form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
            assert http.post("/console/login", data=form).status_code == 303
            return http.get("/console/").text

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def inbox_settled(self) -> bool:
        counts = self.store.inbox.counts()
        return not counts.get("pending") and not counts.get("processing")

    def emitters_idle(self) -> bool:
        for shop in TENANTS:
            status = httpx.get(f"{self.world.url(shop)}/_emit/status", timeout=TIMEOUT).json()
            if status["running"] or status["inflight"]:
                return False
        return True

    def deliveries_settled(self) -> bool:
        statuses = {status for (_, _, status) in self.store.deliveries.counts()}
        return not statuses & {"pending", "delivering"}


@pytest.fixture
def dispatch(settings: Settings, service_for: Callable[..., JobService]) -> Iterator[Dispatch]:
    """Shops + runtime + gateway, with acme (shop-alpha) and globex (shop-beta) keys."""
    with SandboxWorld(specs(), seed=11) as world:
        allow = [world.url(shop).removeprefix("http://") for shop in TENANTS]
        secret = {shop: SecretStr(world.context(shop).options["secret"]) for shop in TENANTS}
        sources = {  # each shop signs with this world's own secret
            "shop-alpha": WebhookSource(scheme="shopify", secrets=[secret["shop-alpha"]],
                                        handler="shop-order", tenant="acme",
                                        require_timestamp=True),
            "shop-beta": WebhookSource(scheme="standard", secrets=[secret["shop-beta"]],
                                       handler="shop-order", tenant="globex"),
        }  # fmt: skip
        tuned = settings.model_copy(update={"url_allowlist": allow, "webhook_sources": sources})
        service = service_for(AdapterRegistry(), settings=tuned)
        server = ServerThread(create_app(service, tuned, delivery_policy=POLICY), tuned).start()
        keys, ids = {}, {}
        for tenant in TENANTS.values():
            issued = issue_key(service.store, tenant=tenant)
            keys[tenant], ids[tenant] = issued.key, issued.record.tenant_id
        for shop in TENANTS:
            world.context(shop).options.update(
                target_url=f"{server.url}/v1/hooks/{shop}", emit_while_down=True
            )
        try:
            yield Dispatch(service, server, world, keys, ids)
        finally:
            for shop in TENANTS:
                httpx.post(f"{world.url(shop)}/_emit/stop", json={"cancel_pending": True})
            server.stop()
