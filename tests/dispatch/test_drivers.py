"""Drivers on WebSocket: pushes of their assignments, resync from a cursor after a gap."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from portwright.apps.dispatch import ORDER_ASSIGNED, SYNC_TOPICS, DispatchRepository
from tests.dispatch.conftest import Dispatch


def _ws_url(d: Dispatch, tenant: str, driver: str, cursor: int | None = None) -> str:
    base = d.url.replace("http://", "ws://") + f"/v1/drivers/{driver}/ws"
    query = f"?access_token={d.keys[tenant]}" + (f"&cursor={cursor}" if cursor is not None else "")
    return base + query


async def _recv(ws: ClientConnection, wait_s: float = 30.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait_s))
    return message


async def _assigned(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next `count` order.assigned pushes (other pushes are skipped)."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        message = await _recv(ws)
        if message.get("type") == ORDER_ASSIGNED:
            got.append(message)
    return got


def _assigned_orders(d: Dispatch, after: int = 0) -> set[str]:
    """Orders dispatch assigned after cursor `after` (an order the shop cancelled before its
    creation was processed is never assigned: events of one order may be applied in any
    order within a batch, as they may arrive in any order)."""
    events = d.store.outbox.since(after, limit=10_000)
    return {e.payload["order_id"] for e in events if e.topic == ORDER_ASSIGNED}


@pytest.mark.postgres
async def test_driver_gets_pushes_and_resyncs_from_its_cursor_after_a_gap(
    dispatch: Dispatch,
) -> None:
    """A connected driver is pushed each order it is assigned; after a disconnect it
    reconnects with its last cursor and receives exactly the assignments it missed; its
    status and location messages become events; another tenant cannot open its socket."""
    d = dispatch
    d.world.context("shop-alpha").options["duplicate_rate"] = 0.0
    d.add_drivers("acme", "d1")
    async with connect(_ws_url(d, "acme", "d1")) as ws:
        hello = await _recv(ws)
        assert hello["type"] == "snapshot"
        assert hello["assignments"] == []
        await asyncio.to_thread(d.shop, "shop-alpha", "/_emit/burst", count=6, wait=True)
        await asyncio.to_thread(d.wait, "the inbox", d.inbox_settled)
        before = _assigned_orders(d)
        first = await _assigned(ws, len(before))
        assert {m["data"]["order_id"] for m in first} == before
        assert all(m["data"]["driver_id"] == "d1" for m in first)
        last_cursor = max(m["cursor"] for m in first)

    # The gap: more orders arrive while the driver is away.
    gap_start = d.store.outbox.last_id()
    await asyncio.to_thread(d.shop, "shop-alpha", "/_emit/burst", count=8, wait=True)
    await asyncio.to_thread(d.wait, "the inbox", d.inbox_settled)
    missed = _assigned_orders(d, after=gap_start)
    assert missed

    async with connect(_ws_url(d, "acme", "d1", cursor=last_cursor)) as ws:
        again = await _assigned(ws, len(missed))
        assert {m["data"]["order_id"] for m in again} == missed
        assert all(m["cursor"] > last_cursor for m in again)
        active = DispatchRepository(d.store.engine).of_driver(
            d.tenant_ids["acme"], "d1", active_only=True
        )
        key = active[0].order_key
        await ws.send(json.dumps({"type": "status", "order_key": key, "status": "picked_up"}))
        await ws.send(json.dumps({"type": "location", "lat": 51.5, "lon": -0.12}))
        await ws.send(json.dumps({"type": "status", "order_key": key, "status": "teleported"}))
        replies: list[dict[str, Any]] = []
        picked: list[dict[str, Any]] = []
        while len(replies) < 3 or not picked:
            message = await _recv(ws)
            if message["type"] in ("ok", "error"):
                replies.append(message)
            elif message["data"]["order_key"] == key and message["data"]["status"] == "picked_up":
                picked.append(message)
        assert [r["type"] for r in replies] == ["ok", "ok", "error"]
        assert replies[2]["field"] == "status"
        assert picked[0]["type"] == "assignment.changed"

    assignment = DispatchRepository(d.store.engine).get(key)
    assert assignment is not None
    assert assignment.status == "picked_up"
    async with connect(_ws_url(d, "acme", "d1")) as ws:  # no cursor: a snapshot first
        hello = await _recv(ws)
        mine = DispatchRepository(d.store.engine).of_driver(
            d.tenant_ids["acme"], "d1", active_only=True
        )
        assert hello["type"] == "snapshot"
        assert hello["assignments"] == [asdict(a) for a in mine]
        assert any(a["status"] == "picked_up" for a in hello["assignments"])
    driver = DispatchRepository(d.store.engine).driver(d.tenant_ids["acme"], "d1")
    assert driver is not None
    assert (driver.lat, driver.lon) == (51.5, -0.12)
    with pytest.raises(InvalidStatus) as refused:  # closed before accept: HTTP 403
        async with connect(_ws_url(d, "globex", "d1")):
            pass
    assert refused.value.response.status_code == 403


def _replay_is_least_loaded(d: Dispatch, tenant: str, drivers: set[str], after: int = 0) -> int:
    """Walk the tenant's assignment events in commit order: each assignment after cursor
    `after` went to the driver of `drivers` with the fewest active orders (ties by id).
    Returns how many were checked."""
    active: dict[str, str] = {}
    checked = 0
    events = d.store.outbox.since(0, tenant_id=tenant, limit=10_000)
    for event in (e for e in events if e.topic in SYNC_TOPICS):
        data = event.payload
        if event.id > after and data["status"] == "assigned" and data["driver_id"] is not None:
            loads = dict.fromkeys(drivers, 0)
            for key, driver in active.items():
                if key != data["order_key"] and driver in loads:
                    loads[driver] += 1
            assert data["driver_id"] == min(loads, key=lambda x: (loads[x], x)), (loads, data)
            checked += 1
        if data["status"] in ("assigned", "picked_up", "in_transit") and data["driver_id"]:
            active[data["order_key"]] = data["driver_id"]
        else:
            active.pop(data["order_key"], None)
    return checked


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_orders_go_to_the_least_loaded_driver_and_follow_duty_changes(dispatch: Dispatch) -> None:
    """Each order goes to the driver with the fewest active orders (ties by id); a driver
    going off duty hands its orders to the others, and the change reaches the platform."""
    d = dispatch
    d.world.context("shop-beta").options["duplicate_rate"] = 0.0
    d.add_drivers("globex", "b", "a", "c")
    d.add_sync("shop-beta")
    d.shop("shop-beta", "/_emit/burst", count=24, wait=True)
    d.wait("the inbox", d.inbox_settled)
    tenant = d.tenant_ids["globex"]
    drivers = {"a", "b", "c"}
    assert _replay_is_least_loaded(d, tenant, drivers) >= 3
    # Which driver still holds orders depends on the order the webhooks arrived in (the shop
    # sends them concurrently and completes some orders): take the busiest off duty.
    held = {
        x: DispatchRepository(d.store.engine).of_driver(tenant, x, active_only=True)
        for x in sorted(drivers)
    }
    leaving = max(held, key=lambda x: len(held[x]))
    moved = held[leaving]
    assert moved, held
    staying = drivers - {leaving}
    cursor = d.store.outbox.last_id()
    r = d.api("globex", "PUT", f"/v1/drivers/{leaving}", json={"available": False})
    assert r.status_code == 200
    assert r.json()["available"] is False
    assert DispatchRepository(d.store.engine).of_driver(tenant, leaving, active_only=True) == []
    for old in moved:
        now = DispatchRepository(d.store.engine).get(old.order_key)
        assert now is not None
        assert now.driver_id in staying
        assert now.version == old.version + 1
    assert _replay_is_least_loaded(d, tenant, staying, after=cursor) == len(moved)

    def shop_agrees() -> bool:
        """The platform's view of every moved order has reached the shop. (Waiting for the
        deliveries alone raced: the relay may not have fanned the new events out yet.)"""
        orders = d.shop_orders("shop-beta", [old.order_id for old in moved])
        for old in moved:
            order = orders[old.order_id]
            now = DispatchRepository(d.store.engine).get(old.order_key)
            assert now is not None
            if (order["delivery_status"], order["driver_id"]) != (now.status, now.driver_id):
                return False
        return True

    d.wait("the reassignments to reach the shop", shop_agrees)
    d.wait("the syncs", d.deliveries_settled)
    assert shop_agrees()  # and nothing older arrived after them
    bad = d.api("globex", "PUT", "/v1/drivers/no%20spaces", json={})
    assert bad.status_code == 422
    assert bad.json()["fields"][0]["field"] == "driver_id"
