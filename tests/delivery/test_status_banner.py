"""The "sync delayed since …" banner follows what is still owed to a platform, on a real
database: a dead letter, or a delivery pending too long (a replayed backlog still draining),
not only the endpoint's last failure."""

from __future__ import annotations

import time

from portwright.observability import ComponentStatus, status_of
from portwright.store import EndpointRecord, Store
from portwright.store._schema import outbox


def _sync(store: Store) -> ComponentStatus:
    (found,) = [c for c in status_of(store) if c.kind == "sync"]
    return found


def _owe(store: Store, endpoint: EndpointRecord, event_id: str, at: float) -> None:
    """An assignment event for the platform, created at `at`, fanned out to `endpoint`."""
    with store.engine.begin() as conn:
        cursor = store.outbox.add(
            conn,
            event_id=event_id,
            topic="order.assigned",
            payload={},
            tenant_id=endpoint.tenant_id,
            platform="shop-alpha",
        )
        conn.execute(outbox.update().where(outbox.c.id == cursor).values(created_at=at))
    with store.engine.begin() as conn:
        store.deliveries.fan_out(conn, store.outbox.by_ids([cursor])[cursor], [endpoint])


def _deliver(store: Store, count: int) -> None:
    for delivery in store.deliveries.claim(worker="t", limit=count, lease_s=30):
        store.deliveries.finish(
            delivery, status="delivered", status_code=200, error=None, duration_ms=1.0
        )


def test_banner_stays_until_the_backlog_is_delivered(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        tenant = store.tenants.ensure("acme")
        endpoint = store.endpoints.create(
            tenant_id=tenant.id,
            url="http://127.0.0.1:9/status",
            secrets=["whsec_x"],
            platform="shop-alpha",
            kind="shop-status",
        )
        hour_ago = time.time() - 3600
        _owe(store, endpoint, "o1:v1", hour_ago)
        _owe(store, endpoint, "o2:v1", hour_ago + 1)
        # Owed for an hour (say, just replayed and not yet sent): delayed since the event.
        status = _sync(store)
        assert status.state == "degraded"
        assert status.delayed_since == hour_ago
        assert "shop-alpha: sync delayed since" in (status.banner or "")
        # The older one delivered, the other still owed: delayed since that one.
        _deliver(store, 1)
        assert _sync(store).delayed_since == hour_ago + 1
        # All delivered: the banner goes.
        _deliver(store, 1)
        assert _sync(store).banner is None
        assert _sync(store).state == "operational"
        # A fresh event, pending for a moment, is not a delay.
        _owe(store, endpoint, "o3:v1", time.time())
        assert _sync(store).banner is None
    finally:
        store.close()


def test_a_portal_whose_runtime_breaker_opened_is_down_on_status(db_url: str) -> None:
    """The runtime records a portal's outcomes on the breaker `portal:<name>`: once that
    opens, /status (and the console, through the same lookup) shows the portal down with
    "circuit open"; a breaker named like the bare portal is not the portal's."""
    from portwright.resilience import BreakerPolicy

    store = Store.open(db_url)
    try:
        store.portals.ensure("brk-open", max_concurrency=1)
        store.portals.ensure("brk-bare", max_concurrency=1)
        policy = BreakerPolicy(min_calls=1, open_s=900)
        store.portals.record_outcome("portal:brk-open", ok=False, policy=policy)
        store.portals.record_outcome("brk-bare", ok=False, policy=policy)
        found = {c.name: c for c in status_of(store) if c.kind == "portal"}
        assert (found["brk-open"].state, found["brk-open"].detail) == ("down", "circuit open")
        assert found["brk-bare"].state == "operational"
    finally:
        store.close()
