"""Dispatch's console page (entry point `portwright.console_panels: dispatch`): the
drivers of each tenant in scope — on duty or not, active orders, last location — with
the orders by status (how far each platform's sync has come), and an operator's
on/off-duty switch (the same change as `PUT /v1/drivers/{id}`, so orders move with it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence

from portwright.apps.dispatch import dispatcher_for
from portwright.apps.dispatch._store import ACTIVE, DispatchRepository
from portwright.console import ConsolePanel, PanelActionError, PanelTable, RowAction
from portwright.store import Store

__all__ = ["PANEL"]

_STATUSES = ("unassigned", "assigned", "picked_up", "in_transit", "delivered", "failed")


def drivers_view(store: Store, tenant_ids: Sequence[str]) -> PanelTable:
    repo = DispatchRepository(store.engine)
    rows: list[tuple[str, ...]] = []
    tenants: list[str] = []
    actions: list[tuple[RowAction, ...]] = []
    by_status: Counter[str] = Counter()
    for tenant_id in tenant_ids:
        orders = repo.all(tenant_id)
        by_status.update(o.status for o in orders)
        active = Counter(o.driver_id for o in orders if o.status in ACTIVE)
        for d in repo.drivers(tenant_id):
            where = "—" if d.lat is None or d.lon is None else f"{d.lat:.5f}, {d.lon:.5f}"
            rows.append((d.driver_id, d.name, "on duty" if d.available else "off duty",
                         str(active[d.driver_id]), where))  # fmt: skip
            tenants.append(tenant_id)
            switch = "off" if d.available else "on"
            fields = {"driver_id": d.driver_id, "available": switch}
            actions.append((RowAction(f"Set {switch} duty", "duty", fields),))
    figures = [(status.replace("_", " "), str(by_status[status])) for status in _STATUSES]
    return PanelTable(
        columns=("Driver", "Name", "Duty", "Active orders", "Last location"),
        rows=rows, row_tenants=tenants, figures=figures, row_actions=actions,
        empty="No drivers yet: add one with PUT /v1/drivers/{driver_id}.",
    )  # fmt: skip


async def set_duty(store: Store, tenant_id: str, fields: Mapping[str, str]) -> str:
    driver_id = fields.get("driver_id", "")
    switch = fields.get("available", "")
    if switch not in ("on", "off"):
        raise PanelActionError("available: must be 'on' or 'off'")
    dispatcher = dispatcher_for(store)
    current = await asyncio.to_thread(dispatcher.repo.driver, tenant_id, driver_id)
    if current is None:
        raise PanelActionError(f"driver_id: no driver {driver_id!r} in this tenant", status=404)
    await dispatcher.put_driver(tenant_id, driver_id, name=current.name, available=switch == "on")
    return f"driver {driver_id} is now {switch} duty"


PANEL = ConsolePanel(
    name="dispatch",
    title="Drivers",
    heading="dispatch: drivers on duty and orders by status",
    view=drivers_view,
    actions={"duty": set_duty},
)
