"""The core's one plugin loader: apps and worlds plug in through entry-point groups.

The core imports no app and no world; what they add, it finds here, by the entry
points installed packages declare (pyproject.toml `[project.entry-points."<group>"]`):

- `portwright.adapters` — adapter classes (`portwright.adapters.default_registry`).
- `portwright.webhook_handlers` — `make(store) -> WebhookHandler`: the processing a
  webhook source names with `handler = "<entry name>"`.
- `portwright.routers` — `mount(app, store, delivery) -> None`: an app's API routes
  (`portwright.webauth.app_key(app, purpose)` gives them a signing key of their own).
- `portwright.commands` — `register(subparsers) -> None`: more `portwright` commands.
- `portwright.worlds` — a world (the sandbox): a module the `up` stack starts and trusts.
- `portwright.demo_scenarios` — modules with `async run(stack, world, progress)`.
- `portwright.migrations` — a `portwright.store.AppSchema`: an app's tables and the
  Alembic branch that creates them (`migrate` upgrades to every head).
- `portwright.console_panels` — a `portwright.console.ConsolePanel`: a page an app adds
  to the operator console's navigation.
- `portwright.plan_limits` — a `portwright.gateway.PlanLimit`: a per-job quota an app
  adds to the tenants' plans.

A plugin that fails to import is an error naming the group, the entry, what it
points at and why — never a silently missing feature.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

__all__ = [
    "ADAPTERS",
    "COMMANDS",
    "CONSOLE_PANELS",
    "DEMO_SCENARIOS",
    "MIGRATIONS",
    "PLAN_LIMITS",
    "ROUTERS",
    "WEBHOOK_HANDLERS",
    "WORLDS",
    "PluginError",
    "load_plugin",
    "load_plugins",
    "plugin_names",
]

ADAPTERS = "portwright.adapters"
WEBHOOK_HANDLERS = "portwright.webhook_handlers"
ROUTERS = "portwright.routers"
COMMANDS = "portwright.commands"
WORLDS = "portwright.worlds"
DEMO_SCENARIOS = "portwright.demo_scenarios"
MIGRATIONS = "portwright.migrations"
CONSOLE_PANELS = "portwright.console_panels"
PLAN_LIMITS = "portwright.plan_limits"


class PluginError(RuntimeError):
    """An installed plugin could not be loaded, or a named one is not installed."""


def _entries(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def plugin_names(group: str) -> list[str]:
    """The names installed in `group`, sorted."""
    return [ep.name for ep in _entries(group)]


def _load(group: str, ep: EntryPoint) -> Any:
    try:
        return ep.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {ep.name!r} in entry-point group {group!r} ({ep.value}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load_plugins(group: str) -> dict[str, Any]:
    """Every plugin of `group`, loaded: {entry name: object}, by name. Raises PluginError
    naming the first one that fails to load."""
    return {ep.name: _load(group, ep) for ep in _entries(group)}


def load_plugin(group: str, name: str) -> Any:
    """The plugin `name` of `group`; PluginError when it is not installed or fails to load."""
    for ep in _entries(group):
        if ep.name == name:
            return _load(group, ep)
    installed = ", ".join(plugin_names(group)) or "none"
    raise PluginError(
        f"no plugin {name!r} in entry-point group {group!r} (installed: {installed}); "
        "install the package that provides it"
    )
