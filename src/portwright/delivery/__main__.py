"""`python -m portwright.delivery`: the relay on its own, against the configured database.

Settings come from the environment (`PORTWRIGHT_DATABASE_URL`, `PORTWRIGHT_URL_ALLOWLIST`,
`PORTWRIGHT_NATS_URL`, …); the vault's master key (`PORTWRIGHT_MASTER_KEY`, else
`<data_dir>/master.key`) opens the endpoints' sealed signing secrets. Several relays
may run at once: they share the work through the database (row locks on Postgres,
leases on deliveries). SIGTERM or SIGINT stops it: the current round is cancelled and
its leased deliveries are taken over by any relay once their lease ends; nothing is lost.
On PostgreSQL the relay also LISTENs for outbox writes and replays of every process
(`OutboxListener`), so it starts on them at once; `--poll-s` remains the pace for due
retries.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

import structlog

from portwright._heap import tune_collector
from portwright._loop import use_event_loop
from portwright.delivery._notify import OutboxListener
from portwright.observability import configure_logging, configure_tracing, install_excepthooks
from portwright.settings import Settings
from portwright.store import Store

log = structlog.get_logger("portwright.delivery")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m portwright.delivery",
        description="Run the outbox relay: bus sinks, then signed webhook deliveries.",
    )
    parser.add_argument("--poll-s", type=float, default=0.5, help="idle poll interval")
    parser.add_argument(
        "--lease-s", type=float, default=30.0, help="how long a claimed delivery is ours"
    )
    parser.add_argument(
        "--batch", type=int, default=100, help="deliveries per round (events: at least 1,000)"
    )
    parser.add_argument("--timeout-s", type=float, default=10.0, help="per-send HTTP timeout")
    return parser


async def serve(settings: Settings, args: argparse.Namespace) -> None:
    """Run one relay until SIGTERM or SIGINT."""
    from portwright.composition import build_relay
    from portwright.resources.vault import Vault  # opens endpoints' sealed signing secrets

    store = await asyncio.to_thread(Store.open, settings.app_database_url)
    vault = Vault.from_settings(settings, store=store)
    relay = build_relay(
        settings, store, vault, poll_s=args.poll_s, lease_s=args.lease_s, batch=args.batch,
        timeout_s=args.timeout_s,
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    listener = OutboxListener(store, [relay.wake], application_name="portwright-relay")
    relay.start()
    listener.start()
    tune_collector(settings.gc_young_threshold)
    log.info(
        "relay started",
        worker=relay.worker,
        sinks=[repr(s) for s in relay.sinks],
        listening=listener.active,
    )
    try:
        await stop.wait()
    finally:
        await listener.stop()
        await relay.stop()
        store.close()
        log.info("relay stopped", worker=relay.worker)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for flag in ("poll_s", "lease_s", "timeout_s"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be greater than 0")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    settings = Settings()
    use_event_loop(settings.event_loop)
    configure_tracing(settings)
    configure_logging(settings)  # the one setup of every entry point: JSON lines, masked
    install_excepthooks()
    asyncio.run(serve(settings, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
