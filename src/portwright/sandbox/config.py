"""The sandbox world as a configuration: the settings a user would write for its resources.

`world_config(world)` is what a `portwright.toml` would say to use this world's proxies
and captcha services: a static proxy list (each proxy's tier and country), and the
captcha chain "captcha-solver" (2captcha style) then "captcha-tasks" (JSON task style),
whichever of them the world runs. `portwright up` and the demo build their settings from
it exactly as from a file; nothing downstream knows it is the sandbox.
"""

from __future__ import annotations

from typing import Any

from portwright.sandbox._world import SandboxWorld
from portwright.sandbox.proxies import proxy_catalog

__all__ = ["world_config"]

SANDBOX_KEY = "sandbox-key"


def world_config(world: SandboxWorld, *, poll_s: float = 0.1) -> dict[str, Any]:
    """The `proxies` and `captcha` settings (TOML-shaped) of `world`'s services."""
    config: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    for row in proxy_catalog(world):
        entry: dict[str, Any] = {
            "name": row["name"],
            "server": row["url"],
            "tier": row["tier"],
            "country": row["country"],
        }
        if "username" in row:
            entry["username"] = row["username"]
            entry["password"] = row.get("password", "")
        entries.append(entry)
    if entries:
        config["proxies"] = {"lists": [{"name": "sandbox", "proxies": entries}]}
    names = set(world.names())
    providers = [
        {"name": name, "style": style, "url": world.url(name), "api_key": SANDBOX_KEY,
         "poll_s": poll_s}
        for name, style in (("captcha-solver", "2captcha"), ("captcha-tasks", "createtask"))
        if name in names
    ]  # fmt: skip
    if providers:
        config["captcha"] = {"providers": providers}
    return config
