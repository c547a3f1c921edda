"""Pages the apps add to the console (entry-point group `portwright.console_panels`).

An app describes what to show — a table and a few key figures for the tenants the
signed-in operator may see — and, optionally, named actions taking a few form fields.
The console does the rest: the navigation link, sign-in and roles, the CSRF check on
every action, the tenant scope (a tenant's operator sees and acts on that tenant only),
rendering, and the audit row of each action. The app never sees a request.

    SCHEMA = ConsolePanel(name="drivers", title="Drivers", view=…, actions={…})
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from portwright.console._auth import Operator, need
from portwright.console._render import PREFIX, page
from portwright.plugins import CONSOLE_PANELS, PluginError, load_plugins
from portwright.store import Store

__all__ = [
    "ConsolePanel",
    "PanelAction",
    "PanelActionError",
    "PanelTable",
    "RowAction",
    "installed_panels",
    "panels_router",
]

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_MAX_FIELD = 500


@dataclass(frozen=True)
class RowAction:
    """A button on one row: posts `action` with `fields` (plus the row's tenant)."""

    label: str
    action: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PanelTable:
    """What a panel shows: key figures, then one table. `row_tenants[i]` is the tenant of
    `rows[i]` (actions on that row are scoped to it)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    row_tenants: Sequence[str]
    figures: Sequence[tuple[str, str]] = ()
    row_actions: Sequence[Sequence[RowAction]] = ()
    empty: str = "Nothing to show."


class PanelActionError(Exception):
    """An action refused its input: shown as HTTP `status` with the message (which names
    the field and the problem)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# (store, tenant_id, fields) -> a one-line result for the operator.
PanelAction = Callable[[Store, str, Mapping[str, str]], Awaitable[str]]


@dataclass(frozen=True)
class ConsolePanel:
    """An app's console page at `/console/apps/<name>`, linked as `title` in the navigation.

    `view(store, tenant_ids)` (run in a thread) reads only those tenants' rows; an
    action is allowed to operators and admins, and only on a tenant the operator may see."""

    name: str
    title: str
    view: Callable[[Store, Sequence[str]], PanelTable]
    actions: Mapping[str, PanelAction] = field(default_factory=dict)
    heading: str = ""


def installed_panels() -> list[ConsolePanel]:
    """The installed apps' panels, by entry-point name; PluginError on a malformed one."""
    panels: list[ConsolePanel] = []
    for entry, panel in load_plugins(CONSOLE_PANELS).items():
        if not isinstance(panel, ConsolePanel):
            raise PluginError(
                f"plugin {entry!r} in entry-point group {CONSOLE_PANELS!r} is a "
                f"{type(panel).__name__}, not a portwright.console.ConsolePanel"
            )
        if not _NAME.match(panel.name):
            raise PluginError(
                f"plugin {entry!r} in entry-point group {CONSOLE_PANELS!r}: name "
                f"{panel.name!r} must be lowercase letters, digits and '-'"
            )
        panels.append(panel)
    return panels


def _tenants(store: Store, op: Operator) -> list[str]:
    return [op.tenant_id] if op.tenant_id is not None else list(store.console.tenant_names())


def panels_router(store: Store, panels: Sequence[ConsolePanel]) -> APIRouter:
    router = APIRouter()
    by_name = {p.name: p for p in panels}
    viewer = Depends(need("viewer"))
    acting = Depends(need("operator"))

    def panel_or_404(name: str) -> ConsolePanel:
        panel = by_name.get(name)
        if panel is None:
            raise HTTPException(404, f"no console page {name!r}")
        return panel

    @router.get("/apps/{name}")
    async def show(request: Request, name: str, op: Operator = viewer) -> Response:
        panel = panel_or_404(name)
        tenant_ids = await asyncio.to_thread(_tenants, store, op)
        table = await asyncio.to_thread(panel.view, store, tenant_ids)
        names = await asyncio.to_thread(store.console.tenant_names)
        notice = request.query_params.get("done", "")[:200]
        return page(request, "panel.html", op, nav=f"app:{name}", panel=panel, table=table,
                    tenant_names=names, notice=notice)  # fmt: skip

    @router.post("/apps/{name}/{action}")
    async def act(request: Request, name: str, action: str, op: Operator = acting) -> Response:
        panel = panel_or_404(name)
        run = panel.actions.get(action)
        if run is None:
            raise HTTPException(404, f"action: {name!r} has no action {action!r}")
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        for key, value in fields.items():
            if len(value) > _MAX_FIELD:
                raise HTTPException(422, f"{key}: longer than {_MAX_FIELD} characters")
        tenant_id = fields.pop("tenant_id", "")
        if not tenant_id:
            raise HTTPException(422, "tenant_id: required")
        if op.tenant_id is not None and tenant_id != op.tenant_id:
            raise HTTPException(404, f"tenant_id: no tenant {tenant_id!r} in your scope")
        if tenant_id not in await asyncio.to_thread(store.console.tenant_names):
            raise HTTPException(404, f"tenant_id: no tenant {tenant_id!r}")
        try:
            result = await run(store, tenant_id, fields)
        except PanelActionError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        await asyncio.to_thread(
            store.audit.record, actor=op.actor, action=f"console.{name}.{action}",
            target_type=f"console:{name}", target_id=action, before=None,
            after={"tenant_id": tenant_id, **fields}, reason=result, tenant_id=tenant_id,
        )  # fmt: skip
        query = "?" + urlencode({"done": result[:200]}) if result else ""
        return RedirectResponse(f"{PREFIX}/apps/{name}{query}", status_code=303)

    return router
