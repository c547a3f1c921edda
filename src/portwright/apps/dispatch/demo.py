"""The demo's scenario 5: shop webhooks → dispatch → drivers on WebSocket → status sync.

Both sandbox shops send signed order webhooks (shop-alpha's orders belong to
acme, shop-beta's to globex); each tenant's drivers come on duty over the API
and one driver per tenant listens on its WebSocket. shop-alpha's order API goes
down for ~10 s while its webhooks keep coming: its status syncs fail, the
breaker opens, a few go to the dead-letter queue, and `/status` shows "sync
delayed since …". When it is back, an operator replays acme's dead letters of
shop-alpha since the scenario began. The result is ok when every order was dispatched, every
assignment change reached its shop exactly once, the banner showed and cleared,
and a driver that dropped off got exactly what it missed from its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from portwright.cli.scenarios import Progress, ScenarioResult

__all__ = ["run"]

SHOPS = {"shop-alpha": "acme", "shop-beta": "globex"}
DRIVERS = {"acme": ["a-1", "a-2", "a-3"], "globex": ["g-1", "g-2", "g-3"]}
RATE_PER_S = 5.0
WARMUP_S = 4.0
OUTAGE_S = 10.0
TAIL_S = 2.0
TIMEOUT = httpx.Timeout(30.0)


class _Listener:
    """One driver on its WebSocket: counts pushes, remembers its cursor, can drop off."""

    def __init__(self, url: str, key: str, driver: str) -> None:
        self.base = url.replace("http://", "ws://") + f"/v1/drivers/{driver}/ws"
        self.key = key
        self.cursor: int | None = None
        self.pushes: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        from websockets.asyncio.client import connect

        url = f"{self.base}?access_token={self.key}"
        if self.cursor is not None:
            url += f"&cursor={self.cursor}"
        async with connect(url) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if "cursor" in message:
                    self.cursor = int(message["cursor"])
                if message.get("type") not in ("snapshot", "ok", "error"):
                    self.pushes.append(message)


async def run(stack: Any, world: Any, progress: Progress) -> ScenarioResult:
    from portwright.apps.dispatch import SYNC_TOPICS
    from portwright.gateway import issue_key

    store = stack.service.store
    lines: list[str] = []
    began = time.time()
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=TIMEOUT) as api:
        keys, tenant_ids = {}, {}
        for tenant in SHOPS.values():
            issued = await asyncio.to_thread(issue_key, store, tenant=tenant, name="dispatch")
            keys[tenant], tenant_ids[tenant] = issued.key, issued.record.tenant_id

        def auth(tenant: str) -> dict[str, str]:
            return {"authorization": f"Bearer {keys[tenant]}"}

        for shop, tenant in SHOPS.items():
            for driver in DRIVERS[tenant]:
                r = await api.put(
                    f"/v1/drivers/{driver}", json={"name": driver}, headers=auth(tenant)
                )
                r.raise_for_status()
            sync = {
                "url": world.url(shop),
                "kind": "shop-status",
                "platform": shop,
                "topics": list(SYNC_TOPICS),
                "max_attempts": 1,
            }
            (
                await api.post("/v1/webhook-endpoints", json=sync, headers=auth(tenant))
            ).raise_for_status()
        listeners = {t: _Listener(stack.gateway_url, keys[t], DRIVERS[t][0]) for t in keys}
        for listener in listeners.values():
            listener.start()
        progress(
            f"dispatch: {sum(map(len, DRIVERS.values()))} drivers on duty for acme "
            f"(shop-alpha) and globex (shop-beta); a-1 and g-1 listen on WebSocket"
        )
        async with httpx.AsyncClient(timeout=TIMEOUT) as shops:
            for shop in SHOPS:
                world.context(shop).options["emit_while_down"] = True
                start = {"rate_per_s": RATE_PER_S}
                (await shops.post(f"{world.url(shop)}/_emit/start", json=start)).raise_for_status()
            await asyncio.sleep(WARMUP_S)
            world.chaos("shop-alpha").update({"down": True})
            progress("dispatch: shop-alpha's order API is DOWN; its webhooks keep coming")
            banner = await _watch_outage(api, store, listeners["acme"], progress)
            world.chaos("shop-alpha").update({"down": False})
            progress("dispatch: shop-alpha's order API is back")
            await asyncio.sleep(TAIL_S)
            for shop in SHOPS:
                await shops.post(f"{world.url(shop)}/_emit/stop")
            await _settle(shops, world, store)
        missed = await _resync(listeners["acme"])
        for listener in listeners.values():
            await listener.stop()
        dead = await asyncio.to_thread(_dead, store, tenant_ids["acme"])
        # Since the scenario began, not "today": a run across midnight UTC has dead letters
        # from yesterday.
        window = {"since": began, "until": time.time() + 60}
        replay = await api.post(
            "/v1/dead-letters/replay",
            headers=auth("acme"),
            json={"platform": "shop-alpha", **window},
        )
        replayed = int(replay.json().get("replayed", 0))
        since = datetime.fromtimestamp(began, UTC).strftime("%H:%M:%S UTC")
        progress(
            f"dispatch: operator replayed {replayed} dead letter(s) of acme · shop-alpha · "
            f"since {since}"
        )
        cleared = await _wait(
            lambda: (
                _quiet_relay(store) and not _dead(store, tenant_ids["acme"]) and not _banner(store)
            )
        )
    ok = banner is not None and cleared and replayed == dead
    lines.append(f"dispatch: banner while down: {banner or 'NOT SHOWN'}")
    lines.append(
        f"dispatch: {dead} sync(s) dead-lettered, {replayed} replayed, "
        f"banner {'cleared' if cleared else 'STILL SHOWN'}"
    )
    for shop, tenant in SHOPS.items():
        good, line = await asyncio.to_thread(_check, store, world, shop, tenant_ids[tenant])
        ok = ok and good
        lines.append(line)
    pushes = {t: len(li.pushes) for t, li in listeners.items()}
    lines.append(
        f"dispatch: driver pushes a-1 {pushes['acme']}, g-1 {pushes['globex']}; "
        f"a-1 resynced {missed} missed event(s) from its cursor"
    )
    ok = ok and pushes["acme"] > 0 and pushes["globex"] > 0
    return ScenarioResult("dispatch", ok, lines)


async def _watch_outage(
    api: httpx.AsyncClient, store: Any, listener: _Listener, progress: Progress
) -> str | None:
    """Hold the outage for OUTAGE_S; report the banner; drop a-1 off its socket meanwhile."""
    banner: str | None = None
    deadline = time.monotonic() + OUTAGE_S
    await listener.stop()  # a-1 loses its connection during the outage
    while time.monotonic() < deadline:
        try:
            status = await api.get("/status", headers={"accept": "application/json"})
        except httpx.TransportError:  # e.g. a kept-alive connection closed under us: poll again
            await asyncio.sleep(0.5)
            continue
        found = [c["banner"] for c in status.json()["components"] if c["banner"]]
        if found and banner is None:
            banner = found[0]
            progress(f"dispatch: /status shows “{banner}”")
        await asyncio.sleep(0.5)
    return banner


async def _resync(listener: _Listener) -> int:
    """a-1 reconnects from its last cursor and gets what it missed."""
    before = len(listener.pushes)
    listener.start()
    await asyncio.sleep(2.0)
    return len(listener.pushes) - before


async def _settle(shops: httpx.AsyncClient, world: Any, store: Any) -> None:
    async def quiet() -> bool:
        for shop in SHOPS:
            status = (await shops.get(f"{world.url(shop)}/_emit/status")).json()
            if status["running"] or status["inflight"]:
                return False
        counts = store.inbox.counts()
        return not counts.get("pending") and not counts.get("processing") and _quiet_relay(store)

    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if await quiet():
            return
        await asyncio.sleep(0.3)


def _quiet_relay(store: Any) -> bool:
    return not {s for (_, _, s) in store.deliveries.counts()} & {"pending", "delivering"}


def _dead(store: Any, tenant_id: str) -> int:
    from portwright.store import DeliveryFilter

    where = DeliveryFilter(tenant_id=tenant_id, platform="shop-alpha")
    return len(store.deliveries.search(where, status="dead", limit=100_000))


def _banner(store: Any) -> bool:
    from portwright.observability import status_of

    return any(c.banner for c in status_of(store))


async def _wait(check: Any, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.3)
    return False


def _check(store: Any, world: Any, shop: str, tenant_id: str) -> tuple[bool, str]:
    """Every created order dispatched; every assignment change in the shop's ledger once."""
    from portwright.apps.dispatch import SYNC_TOPICS

    ledger = world.ledger(shop)
    created = {
        str(e.data["order_id"])
        for e in ledger.entries("webhook_sent")
        if e.data["event_type"] == "created" and e.data["delivered"]
    }
    from portwright.apps.dispatch import DispatchRepository

    known = {a.order_id for a in DispatchRepository(store.engine).all(tenant_id)}
    events = store.outbox.since(0, tenant_id=tenant_id, limit=100_000)
    syncs = {e.event_id for e in events if e.topic in SYNC_TOPICS}
    keys = [entry.key for entry in ledger.entries("status_update")]
    lost = len(created - known)
    unsynced = len(syncs - set(keys))
    twice = len(keys) - len(set(keys))
    good = lost == 0 and unsynced == 0 and twice == 0
    line = (
        f"dispatch: {shop}: {len(created)} orders, {lost} lost; {len(syncs)} assignment "
        f"changes, {unsynced} not synced, {twice} synced twice"
    )
    return good, line
