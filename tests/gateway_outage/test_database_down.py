"""The database going away under the gateway: a webhook is refused with 503 and Retry-After
(nothing half-accepted), and accepted once the database is back.

Outside `tests/gateway` on purpose: these tests start a runtime of their own (its database
behind a proxy they cut), and `tests/gateway`'s package-scoped `stack` keeps a launched DBOS
in the test process while any test of that package runs there — a runtime started beside
it fails ("Datasources must be created before DBOS.launch()"), as in a CI rehearsal where
a gateway file ran just before this one in the same process."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import standardwebhooks
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.adapters.scrape import ScrapeAdapter
from portwright.console import hash_password
from portwright.gateway import create_app, issue_key
from portwright.orchestrator import JobService
from portwright.settings import Settings, WebhookSource
from portwright.testing import EchoAdapter, wait_until
from tests.dbproxy import DatabaseProxy, allow_connections
from tests.gateway._support import ServerThread

SECRET = "whsec_" + base64.b64encode(b"database-down-test-secret-key!!!").decode()


def _send(url: str, msg_id: str, *, timeout: float = 30) -> httpx.Response:
    body = json.dumps({"type": "order.created", "data": {"id": msg_id}})
    signature = standardwebhooks.Webhook(SECRET).sign(msg_id, datetime.now(tz=UTC), body)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(datetime.now(tz=UTC).timestamp())),
        "webhook-signature": signature,
    }
    return httpx.post(f"{url}/v1/hooks/shop-beta", content=body, headers=headers, timeout=timeout)


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
        allow_connections(database, allow=False)
        try:
            down = _send(server.url, "msg_during")
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "5"
            assert down.json()["code"] == "unavailable"
        finally:
            allow_connections(database, allow=True)

        async def accepted() -> httpx.Response | None:
            again = _send(server.url, "msg_during")
            return again if again.status_code != 503 else None

        again = await wait_until(accepted, timeout=30, every=0.5)
        assert again.status_code == 202, again.text  # not a duplicate: the 503 stored nothing
        stored = {r.event_id for r in service.store.inbox.search(source="shop-beta")}
        assert stored == {"msg_before", "msg_during"}
    finally:
        server.stop()


# -- every route family while the database is unreachable (a TCP proxy goes down) -------------

PASSWORD = "outage console password"
Probe = tuple[str, str, str, dict[str, Any]]  # (method, path, which key, request kwargs)


def _probes(job_id: str) -> list[Probe]:
    """One request per route family; "cached" authenticates from the key cache (so the
    database error comes from the route or the idempotency middleware), "fresh" is a key
    the gateway has not seen yet (so it comes from the authentication middleware)."""
    job = {"adapter": "echo", "input": {"url": "http://127.0.0.1:9", "key": "during"}}
    scrape_body = {"url": "http://127.0.0.1:9/page"}
    return [
        ("GET", "/v1/jobs", "cached", {}),
        ("GET", f"/v1/jobs/{job_id}", "cached", {}),
        ("GET", f"/v1/jobs/{job_id}/events", "cached", {}),
        ("POST", f"/v1/jobs/{job_id}/cancel", "cached", {}),
        ("POST", "/v1/jobs", "cached", {"json": job}),
        ("POST", "/v1/jobs", "cached", {"json": job, "headers": {"idempotency-key": "during-1"}}),
        ("POST", "/v1/jobs", "fresh", {"json": job}),
        ("POST", "/v1/scrape", "cached", {"json": scrape_body}),
        ("POST", "/v1/batch", "cached", {"json": {"items": [scrape_body]}}),
        ("GET", "/v1/settings/scrape", "cached", {}),
        ("GET", "/v1/portals", "cached", {}),
        ("GET", "/v1/me", "cached", {}),
        ("GET", "/v1/usage", "cached", {}),
        ("GET", "/v1/credentials", "cached", {}),
        ("GET", "/v1/webhook-endpoints", "cached", {}),
        ("GET", "/v1/deliveries", "cached", {}),
        ("GET", "/v1/drivers", "cached", {}),
        ("GET", "/v1/me", "fresh", {}),
        ("GET", "/status", "none", {}),
        ("GET", "/readyz", "none", {}),
        ("GET", "/metrics", "none", {}),
        ("GET", "/console/", "console", {}),
        ("GET", "/console/jobs", "console", {}),
    ]


# A bound against hanging, not a speed target: an unbounded connect or a retry loop takes
# 10 s and more; a request answers in well under a second on an idle machine, and took up to
# 3.5 s on a CI machine loaded by two test workers.
QUICK_S = 8.0


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_every_route_family_answers_503_quickly_while_the_database_is_down(
    outage_gateway: OutageGateway,
) -> None:
    """With PostgreSQL refusing connections, every route that needs the database answers 503
    with Retry-After without hanging (within `QUICK_S`), whether the error is raised in a
    route, in the idempotency middleware or in the authentication middleware; nothing sent
    meanwhile is kept."""
    gw = outage_gateway
    gw.proxy.down("refuse")
    try:
        for method, path, who, kwargs in _probes(gw.job_id):
            answer, elapsed = gw.timed(method, path, who, **kwargs)
            assert answer.status_code == 503, (method, path, who, answer.text[:300])
            assert answer.headers.get("retry-after") == "5", (method, path, answer.headers)
            assert elapsed < QUICK_S, (method, path, who, elapsed)
        hook, elapsed = gw.timed_hook("msg_during_outage")
        assert hook.status_code == 503, hook.text
        assert hook.headers["retry-after"] == "5"
        assert elapsed < QUICK_S
        assert gw.http.get("/healthz").status_code == 200  # liveness needs no database
    finally:
        gw.proxy.up()
    await gw.assert_nothing_kept()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_blackholed_database_still_gets_an_answer(
    outage_gateway: OutageGateway,
) -> None:
    """A database host that accepts connections and never answers (a firewall dropping
    packets) is given up on after the connect timeout: 503, not a hung request."""
    gw = outage_gateway
    gw.proxy.down("blackhole")
    try:
        for method, path, who, kwargs in _probes(gw.job_id)[:5:2]:
            answer, _ = gw.timed(method, path, who, **kwargs)
            assert answer.status_code == 503, (method, path, answer.text[:300])
            assert answer.headers.get("retry-after") == "5"
        answer, _ = gw.timed("GET", "/v1/me", "fresh")
        assert answer.status_code == 503, answer.text
    finally:
        gw.proxy.up()
    await gw.assert_nothing_kept()


@dataclass
class OutageGateway:
    """A gateway whose database (PostgreSQL) sits behind a proxy the test takes down."""

    proxy: DatabaseProxy
    service: JobService
    server: ServerThread
    http: httpx.Client
    keys: dict[str, str]
    console_cookies: httpx.Cookies
    job_id: str

    def timed(
        self, method: str, path: str, who: str, **kwargs: Any
    ) -> tuple[httpx.Response, float]:
        headers = dict(kwargs.pop("headers", {}))
        cookies = None
        if who in self.keys:
            headers["authorization"] = f"Bearer {self.keys[who]}"
        elif who == "console":
            cookies = self.console_cookies
        started = time.monotonic()
        # Callers check elapsed against QUICK_S; the client waits longer, so a slow answer
        # fails with its route and its time, not a bare ReadTimeout.
        with httpx.Client(base_url=self.server.url, timeout=30, cookies=cookies) as client:
            answer = client.request(method, path, headers=headers, **kwargs)
        return answer, time.monotonic() - started

    def timed_hook(self, msg_id: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        answer = _send(self.server.url, msg_id, timeout=30)
        return answer, time.monotonic() - started

    async def assert_nothing_kept(self) -> None:
        """Once the database is back: no job, webhook or idempotency key from the outage."""

        async def back() -> bool:
            answer = self.http.get("/readyz")
            return answer.status_code != 503 or answer.json().get("status") != "unavailable"

        await wait_until(back, timeout=30, every=0.2)
        store = self.service.store
        jobs = store.jobs.search(limit=100)
        assert [j.id for j in jobs] == [self.job_id]
        assert "msg_during_outage" not in {r.event_id for r in store.inbox.search()}
        # The idempotency key tried during the outage was never claimed: it works now.
        job = {"adapter": "echo", "input": {"url": "http://127.0.0.1:9", "key": "after"}}
        again = self.http.post(
            "/v1/jobs",
            json=job,
            headers={
                "authorization": f"Bearer {self.keys['cached']}",
                "idempotency-key": "during-1",
            },
        )
        assert again.status_code == 202, again.text


@pytest.fixture
def db_proxy() -> Iterator[DatabaseProxy]:
    """Set up before (so torn down after) the runtime that connects through it."""
    with DatabaseProxy(("127.0.0.1", 5432)) as proxy:
        yield proxy


@pytest.fixture
def outage_gateway(
    db_proxy: DatabaseProxy, db_url: str, settings: Settings, service_for: Callable[..., JobService]
) -> Iterator[OutageGateway]:
    proxy = db_proxy
    sources = {
        "shop-beta": WebhookSource(scheme="standard", secrets=[SecretStr(SECRET)], handler="record")
    }
    tuned = settings.model_copy(
        update={
            "database_url": proxy.url_for(settings.app_database_url),
            "webhook_sources": sources,
            "url_allowlist": ["127.0.0.1:9"],  # the scrape probes' target passes the guard
            "api_key_cache_s": 600.0,  # the "cached" key is verified once, before the outage
        }
    )
    registry = AdapterRegistry()
    registry.register(EchoAdapter)
    registry.register(ScrapeAdapter)
    service = service_for(registry, settings=tuned)
    store = service.store
    keys = {
        who: issue_key(store, tenant="acme", scopes="jobs scrape admin").key
        for who in ("cached", "fresh")
    }
    store.console.create_operator(
        email="ops@example.test", password_hash=hash_password(PASSWORD), role="admin",
        tenant_id=None,
    )  # fmt: skip
    server = ServerThread(create_app(service, tuned)).start()
    http = httpx.Client(base_url=server.url, timeout=30)
    try:
        first = http.post(
            "/v1/jobs",
            json={"adapter": "echo", "input": {"url": "http://127.0.0.1:9", "key": "before"}},
            headers={"authorization": f"Bearer {keys['cached']}"},
        )
        assert first.status_code == 202, first.text
        form = http.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        login = {"email": "ops@example.test", "password": PASSWORD, "csrf_token": token[1]}
        assert http.post("/console/login", data=login).status_code == 303
        yield OutageGateway(proxy, service, server, http, keys, http.cookies, first.json()["id"])
    finally:
        proxy.up()
        http.close()
        server.stop()
