"""The sandbox world as a configuration: the settings a user would write for its resources.

`world_config(world)` is what a `portwright.toml` would say to use this world's proxies
and captcha services: a static proxy list (each proxy's tier and country), and the
captcha chain "captcha-solver" (2captcha style) then "captcha-tasks" (JSON task style),
whichever of them the world runs. `portwright up` and the demo build their settings from
it exactly as from a file; nothing downstream knows it is the sandbox.
`portwright sandbox --write-config FILE` writes it (`world_toml`) as a `portwright.toml`
that workers started elsewhere can use (`PORTWRIGHT_CONFIG=FILE portwright worker`).
"""

from __future__ import annotations

import json
from typing import Any

from portwright.sandbox._world import SandboxWorld
from portwright.sandbox.proxies import proxy_catalog

__all__ = ["world_config", "world_toml"]

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


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string


def world_toml(world: SandboxWorld) -> str:
    """`world_config(world)` as a `portwright.toml`, with the world's ports on the SSRF
    allowlist (jobs may reach its portals, proxies and solvers)."""
    config = world_config(world)
    allow = sorted(url.split("://", 1)[-1] for url in world.urls().values())
    lines = [
        f"# the sandbox world (seed {world.seed}) as resources",
        f"url_allowlist = {_value(allow)}",
    ]
    names = set(world.names())
    if "smtp" in names:  # customers' email and SMS land in the world's inbox
        lines.append(f"smtp_url = {_value(world.url('smtp'))}")
    if "inbox" in names:
        lines.append(f"sms_url = {_value(world.url('inbox') + '/sms')}")
        lines.append(f"bot_api_url = {_value(world.url('inbox'))}")
        lines.append('bot_token = "sandbox-bot"')
        lines.append(f"staff_chat_webhook_url = {_value(world.url('inbox') + '/chat/staff')}")
    for plist in config.get("proxies", {}).get("lists", []):
        lines += ["", "[[proxies.lists]]", f"name = {_value(plist['name'])}", "proxies = ["]
        for entry in plist["proxies"]:
            fields = ", ".join(f"{k} = {_value(v)}" for k, v in entry.items())
            lines.append(f"  {{ {fields} }},")
        lines.append("]")
    for provider in config.get("captcha", {}).get("providers", []):
        lines += ["", "[[captcha.providers]]"]
        lines += [f"{key} = {_value(value)}" for key, value in provider.items()]
    return "\n".join(lines) + "\n"
