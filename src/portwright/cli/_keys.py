"""`portwright keys create | revoke | list` and `portwright api` (the gateway alone)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portwright.cli._common import add_settings_flags, settings_from

__all__ = ["register"]


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys: create, revoke, list")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    p = actions.add_parser("create", help="create a key (prints it alone on the last line)")
    add_settings_flags(p)
    p.add_argument("--tenant", required=True, help="tenant name (created if missing)")
    p.add_argument("--name", default="", help="a label for the key")
    p.add_argument("--plan", default=None, help="set the tenant's plan (starter, growth, …)")
    p.add_argument("--admin", action="store_true", help="also grant the admin scope")
    p.add_argument(
        "--operator",
        action="store_true",
        help="also grant the operator scope (claim and decide escalations via /v1/escalations)",
    )
    p.set_defaults(func=_create)

    p = actions.add_parser("revoke", help="revoke a key by its prefix (or the whole key)")
    add_settings_flags(p)
    p.add_argument("key", help="the key's prefix, or the key itself")
    p.set_defaults(func=_revoke)

    p = actions.add_parser("list", help="list a tenant's keys (prefixes only)")
    add_settings_flags(p)
    p.add_argument("--tenant", required=True)
    p.set_defaults(func=_list)

    p = sub.add_parser("api", help="serve the gateway only (workers run elsewhere)")
    add_settings_flags(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=_api)


def _store(args: argparse.Namespace) -> Any:
    from portwright.store import Store

    settings = settings_from(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store.open(settings.app_database_url)


def _create(args: argparse.Namespace) -> int:
    from portwright.gateway import PLANS, issue_key

    if args.plan is not None and args.plan not in PLANS:
        print(f"--plan: unknown plan {args.plan!r} (plans: {', '.join(PLANS)})", file=sys.stderr)
        return 2
    store = _store(args)
    try:
        scopes = " ".join(
            ["jobs", *(["operator"] if args.operator else []), *(["admin"] if args.admin else [])]
        )
        issued = issue_key(store, tenant=args.tenant, name=args.name, scopes=scopes, plan=args.plan)
    finally:
        store.close()
    record = issued.record
    print(f"tenant {args.tenant} ({record.tenant_id}), key prefix {record.prefix}, scopes {scopes}")
    print("store this key now; it is not shown again:")
    print(issued.key, flush=True)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from portwright.gateway.auth import parse_key

    parsed = parse_key(args.key)
    prefix = parsed[0] if parsed else args.key
    store = _store(args)
    try:
        revoked = store.accounts.revoke(prefix)
    finally:
        store.close()
    if not revoked:
        print(f"no active key with prefix {prefix!r}", file=sys.stderr)
        return 1
    print(f"revoked key {prefix}")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        tenant = store.accounts.tenant_by_name(args.tenant)
        if tenant is None:
            print(f"no tenant named {args.tenant!r}", file=sys.stderr)
            return 1
        for key in store.accounts.keys(tenant.id):
            state = "revoked" if key.revoked_at else "active"
            print(f"{key.prefix}  {state:8}  {key.scopes:12}  {key.name}")
    finally:
        store.close()
    return 0


def _api(args: argparse.Namespace) -> int:
    import structlog
    import uvicorn

    from portwright._heap import tune_collector
    from portwright._loop import use_event_loop
    from portwright.cli._stack import start_runtime
    from portwright.gateway import create_app, server_config
    from portwright.observability import configure_logging, configure_tracing
    from portwright.orchestrator import JobService

    settings = settings_from(args)
    loop = use_event_loop(settings.event_loop)  # DBOS's loop, and uvicorn's below
    configure_tracing(settings)  # PORTWRIGHT_OTEL_EXPORTER; off by default
    configure_logging(settings)  # the same JSON, masked lines as `up`
    runtime, vault = start_runtime(settings, run_workers=False)
    try:
        app = create_app(JobService(runtime), settings, vault=vault)
        url = f"http://{args.host}:{args.port}"
        structlog.get_logger("portwright.gateway").info("gateway starting", url=url)
        # log_config=None: uvicorn's loggers keep ours (JSON, masked), not its own formatters.
        config = server_config(
            app,
            settings,
            host=args.host,
            port=args.port,
            log_level="warning",
            log_config=None,
            loop=loop,
        )
        tune_collector(settings.gc_young_threshold)
        uvicorn.Server(config).run()
    finally:
        runtime.stop()
        vault.close()
    return 0
