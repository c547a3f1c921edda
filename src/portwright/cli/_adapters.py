"""`portwright adapters list | check`: the installed adapters, their versions and rollouts.

`list` prints each installed adapter version (the default one marked, candidates noted,
its read-only steps, whether it has a probe) and, from the database, the portal's
rollout. `check` loads every entry point and exits 1 naming each problem: a plugin that
fails to load, or a rollout that names a version this installation lacks.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portwright.cli._common import add_settings_flags, settings_from

__all__ = ["register"]


def register(sub: Any) -> None:
    adapters = sub.add_parser("adapters", help="installed adapters: list, check")
    actions = adapters.add_subparsers(dest="adapters_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="installed adapter versions and each portal's rollout")
    add_settings_flags(p)
    p.set_defaults(func=_list)
    p = actions.add_parser("check", help="load every adapter; check the rollouts' versions")
    add_settings_flags(p)
    p.set_defaults(func=_check)


def _load(args: argparse.Namespace) -> tuple[Any, Any] | None:
    from portwright.adapters import default_registry
    from portwright.plugins import PluginError
    from portwright.store import Store

    settings = settings_from(args)
    try:
        registry = default_registry()
    except (PluginError, TypeError) as exc:
        print(f"portwright adapters: {exc}", file=sys.stderr)
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.app_database_url)
    return registry, store


def _list(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return 2
    registry, store = loaded
    try:
        rollouts = {(r.portal, r.scope): r for r in store.rollouts.all()}
    finally:
        store.close()
    for name in registry.names():
        default = registry.default_version(name)
        for version in registry.versions(name):
            cls = registry.get(name, version)
            notes = ["default" if version == default else ""]
            notes.append("candidate" if cls.candidate else "")
            steps = ",".join(sorted(cls.read_only_steps)) or "-"
            notes.append("probe" if _overrides_probe(cls) else "")
            flags = " ".join(n for n in notes if n)
            print(f"{name}@{version}\tportal={cls.portal_name()}\tread-only={steps}\t{flags}")
        for (portal, scope), r in sorted(rollouts.items()):
            if r.adapter != name:
                continue
            canary = f"{r.canary} ({r.canary_percent}%, tenants {len(r.canary_tenants)})"
            print(
                f"  rollout {portal}{'/' + scope if scope else ''}: live={r.live} "
                f"canary={canary if r.canary else '-'} shadow={r.shadow or '-'}"
            )
    return 0


def _overrides_probe(cls: Any) -> bool:
    from portwright.sdk import Adapter

    return cls.probe is not Adapter.probe


def _check(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return 2
    registry, store = loaded
    try:
        rollouts = store.rollouts.all()
    finally:
        store.close()
    problems = []
    for r in rollouts:
        if r.adapter not in registry:
            problems.append(f"rollout of {r.portal!r}: adapter {r.adapter!r} is not installed")
            continue
        for role in ("live", "canary", "shadow"):
            version = getattr(r, role)
            if version is not None and not registry.has(r.adapter, version):
                installed = ", ".join(registry.versions(r.adapter))
                problems.append(
                    f"rollout of {r.portal!r}{' for ' + r.scope if r.scope else ''}: {role} "
                    f"version {version!r} of {r.adapter!r} is not installed (installed: "
                    f"{installed})"
                )
    for problem in problems:
        print(f"portwright adapters check: {problem}", file=sys.stderr)
    if not problems:
        count = sum(len(registry.versions(n)) for n in registry.names())
        print(f"ok: {count} adapter versions, {len(rollouts)} rollouts")
    return 1 if problems else 0
