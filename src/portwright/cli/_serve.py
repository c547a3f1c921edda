"""`portwright sandbox | migrate | worker | up`: the long-running processes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from portwright._heap import tune_collector
from portwright._loop import use_event_loop
from portwright.cli._common import add_settings_flags, settings_from
from portwright.cli._supervise import StopSignals, catch_stop_signals

__all__ = ["register"]

log = structlog.get_logger("portwright.cli")


def register(sub: Any) -> None:
    p = sub.add_parser("sandbox", help="start the sandbox world (every simulated portal)")
    p.add_argument("--seed", type=int, default=None, help="seed (PORTWRIGHT_SANDBOX_SEED)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--admin-port", type=int, default=0, help="admin endpoint port (0: any)")
    p.add_argument(
        "--write-config",
        metavar="FILE",
        help="write the world's proxies, solvers and allowlist as a portwright.toml to FILE",
    )
    p.set_defaults(func=_sandbox)

    p = sub.add_parser("migrate", help="create or upgrade the databases (for scale-out)")
    add_settings_flags(p)
    p.set_defaults(func=_migrate)

    p = sub.add_parser("worker", help="run jobs: a worker process (scale out with several)")
    add_settings_flags(p)
    p.add_argument("--worker-id", help="stable executor id (PORTWRIGHT_WORKER_ID)")
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve this worker's /metrics on 127.0.0.1:PORT (PORTWRIGHT_WORKER_METRICS_PORT)",
    )
    p.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port")
    p.set_defaults(func=_worker)

    p = sub.add_parser("up", help="gateway, workers and sandbox in one process")
    add_settings_flags(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-sandbox", action="store_true", help="do not start the sandbox world")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=_up)


def _wait_for_signal(stop: StopSignals | None = None) -> None:
    """Until SIGINT/SIGTERM; `stop` caught them before what runs was started."""
    stop = stop if stop is not None else catch_stop_signals()
    while not stop.event.wait(1.0):
        pass


def _sandbox(args: argparse.Namespace) -> int:
    from portwright.cli._stack import sandbox_world

    sandbox = sandbox_world()

    settings = settings_from(args)
    seed = args.seed if args.seed is not None else settings.sandbox_seed
    started = time.monotonic()
    world = sandbox.SandboxWorld(
        sandbox.default_services(), seed=seed, host=args.host, admin_port=args.admin_port
    )
    with world:
        for name, url in world.describe():
            print(f"{name} {url}", flush=True)
        if args.write_config:
            Path(args.write_config).write_text(sandbox.world_toml(world))
            print(f"# resources written to {args.write_config}", file=sys.stderr)
        elapsed = time.monotonic() - started
        print(f"# sandbox up in {elapsed:.2f}s (seed {seed}); Ctrl-C to stop", file=sys.stderr)
        _wait_for_signal()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from portwright.orchestrator import migrate_databases

    settings = settings_from(args)
    result = migrate_databases(settings)
    print(f"app database at revision {result['app']}; system database ready")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from portwright.cli._stack import start_runtime
    from portwright.cli._supervise import log_exit, log_thread_crashes, run_until_stopped
    from portwright.observability import configure_logging, configure_tracing

    # before the runtime starts: DBOS may run a queued or recovered job's step at once, and
    # a SIGTERM then must stop the worker in order, not kill it (exit -15)
    stop = catch_stop_signals()
    overrides: dict[str, Any] = {"worker_id": args.worker_id} if args.worker_id else {}
    if args.metrics_port is not None:
        overrides["worker_metrics_port"] = args.metrics_port
    settings = settings_from(args, **overrides)
    use_event_loop(settings.event_loop)  # before DBOS makes the loop every job runs on
    configure_tracing(settings)  # PORTWRIGHT_OTEL_EXPORTER; off by default
    configure_logging(settings)
    log_thread_crashes()
    try:
        runtime, vault = start_runtime(settings)  # the same adapters, fleet and vault as `up`
    except Exception as exc:
        log_exit("could not start", code=1, error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    server = None
    code, reason = 1, "unexpected error"
    try:
        if settings.worker_metrics_port is not None:
            server = _serve_metrics(args.metrics_host, settings.worker_metrics_port)
        tune_collector(settings.gc_young_threshold)
        log.info("worker running", worker_id=runtime.executor_id)
        reason = run_until_stopped(runtime, stop=stop)
        code = 0 if reason.startswith("received") else 1
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        raise
    finally:
        try:
            if server is not None:
                server.shutdown()
            # told to stop (SIGTERM/SIGINT): finish what runs here first, within the deadline
            runtime.stop(drain_s=settings.drain_timeout_s if code == 0 else 0.0)
            vault.close()
        finally:
            log_exit(reason, code=code, executor_id=runtime.executor_id)
    return code


def _serve_metrics(host: str, port: int) -> Any:
    """What happens inside this worker's job steps (captchas, proxy rotations and burns, the
    browser pool) at http://host:port/metrics; queue depths, jobs and workers come from the
    database, at the gateway's /metrics."""
    from prometheus_client import start_http_server

    from portwright.observability import PROCESS

    server, _ = start_http_server(port, addr=host, registry=PROCESS.registry)
    bound = server.server_address[1]
    log.info("worker metrics", url=f"http://{host}:{bound}/metrics")
    return server


def _up(args: argparse.Namespace) -> int:
    from portwright.cli._stack import sandbox_world, start_stack
    from portwright.observability import configure_logging, configure_tracing

    stop = catch_stop_signals()  # a SIGTERM while the stack starts stops it once started
    settings = settings_from(args)
    use_event_loop(settings.event_loop)  # before DBOS makes the loop every job runs on
    configure_tracing(settings)  # PORTWRIGHT_OTEL_EXPORTER; off by default
    configure_logging(settings)
    world = None
    if not args.no_sandbox:
        seed = args.seed if args.seed is not None else settings.sandbox_seed
        sandbox = sandbox_world()
        world = sandbox.SandboxWorld(sandbox.default_services(), seed=seed).start()
        for name, url in world.describe():
            print(f"sandbox {name} {url}", flush=True)
    stack = start_stack(settings, world=world, host=args.host, port=args.port)
    tune_collector(settings.gc_young_threshold)
    try:
        print(f"gateway {stack.gateway_url} (API docs at {stack.gateway_url}/docs)", flush=True)
        print(f"console {stack.gateway_url}/console", flush=True)
        print("first steps: portwright keys create --tenant NAME; "
              "portwright operators create --email ADDRESS --role admin", flush=True)  # fmt: skip
        _wait_for_signal(stop)
    finally:
        stack.stop()
        if world is not None:
            world.stop()
    return 0
