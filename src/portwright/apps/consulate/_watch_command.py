"""`portwright consulate-watch`: the consulate's shared watch jobs as a process of its own.

Bookings submitted with `"watch": true` wait for this process to hand them a slot. It scans
each (center, visa type) that has waiting bookings once for all of them, under the portal's
hourly request budget, stores every scan as an observation, and stops on SIGINT/SIGTERM.
The watcher account's password comes from an environment variable, never a flag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    from portwright.cli import add_settings_flags

    p = sub.add_parser(
        "consulate-watch",
        help="scan the consulate for bookings submitted with watch=true (shared watch jobs)",
    )
    p.add_argument("--portal-url", required=True, help="base URL of the consulate portal")
    p.add_argument("--account", required=True, help="the watcher account's email")
    p.add_argument(
        "--password-env", default="PORTWRIGHT_WATCH_PASSWORD",
        help="environment variable holding the watcher account's password",
    )  # fmt: skip
    p.add_argument("--per-hour", type=int, default=120, help="requests per hour to the portal")
    p.add_argument("--sync-every", type=float, default=5.0, help="seconds between job syncs")
    add_settings_flags(p)
    p.set_defaults(func=_run)


def _fail(message: str) -> int:
    print(f"portwright consulate-watch: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    if args.per_hour < 1:
        return _fail(f"--per-hour must be >= 1, got {args.per_hour}")
    if not 0.1 <= args.sync_every <= 3600:
        return _fail(f"--sync-every must be in [0.1, 3600] seconds, got {args.sync_every}")
    password = os.environ.get(args.password_env, "")
    if not password:
        return _fail(f"set the watcher account's password in ${args.password_env}")
    from portwright.cli import settings_from, start_runtime
    from portwright.observability import configure_logging
    from portwright.resources.ssrf import UrlGuard, UrlRefusedError

    settings = settings_from(args)
    configure_logging(settings)
    guard = UrlGuard.from_allowlist(settings.url_allowlist)
    try:
        asyncio.run(guard.check(args.portal_url))
    except UrlRefusedError as exc:
        return _fail(f"--portal-url: {exc}")
    runtime, vault = start_runtime(settings, run_workers=False)
    try:
        asyncio.run(_watch(runtime, guard, args, password))
    finally:
        runtime.stop()
        vault.close()
    return 0


async def _watch(runtime: Any, guard: Any, args: argparse.Namespace, password: str) -> None:
    from portwright.apps.consulate.watch import PortalScanner
    from portwright.intelligence import WatchService
    from portwright.orchestrator import JobService
    from portwright.resources.ssrf import guarded_client

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: task.cancel() if task else None)
    async with guarded_client(guard) as client:
        scanner = PortalScanner(client, args.portal_url, args.account, password)
        watch = WatchService(JobService(runtime), scanner, per_hour=args.per_hour)
        print(f"watching {args.portal_url} for bookings with watch=true", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await watch.run(sync_every_s=args.sync_every)
