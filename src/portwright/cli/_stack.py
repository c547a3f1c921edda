"""Assembling the one-process stack `up` and `demo` run: sandbox, runtime, gateway.

The runtime's resources (proxies, captcha chain, browsers, identities) come from the
settings alone; the sandbox world, reached through its world plugin (`sandbox_world()`),
is one configuration of them: its loopback ports go on the SSRF allowlist (nothing else
local is reachable), its webhook sources (consulate payments, the shops) are trusted with
secrets drawn for the data dir on its first start, its proxies and captcha services become
configured resources (`settings_for`), and its webhooks are sent to this gateway
(`connect`). Portal credentials live in the vault.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from portwright.settings import Settings

__all__ = ["Stack", "platform_registry", "sandbox_world", "start_runtime", "start_stack"]


@dataclass
class Stack:
    settings: Settings
    runtime: Any
    service: Any
    vault: Any
    gateway_url: str
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.runtime.stop()
        self.vault.close()


def sandbox_world() -> Any:
    """The sandbox world's plugin module (`portwright.worlds` entry point `sandbox`); the
    core does not import the sandbox."""
    from portwright.plugins import WORLDS, load_plugin

    return load_plugin(WORLDS, "sandbox")


def _fleet(settings: Settings, captcha: Any, *, notice: bool = True) -> Any:
    """The fleet the settings configure (browsers, proxies, the captcha chain); `captcha`,
    a solver, replaces the configured chain."""
    from portwright.engines import ChromiumNotFoundError, Fleet
    from portwright.resources import SolverChain, proxy_pool_from, solver_chain_from
    from portwright.resources.ssrf import UrlGuard

    guard = UrlGuard.from_allowlist(settings.url_allowlist)
    proxies = proxy_pool_from(settings.proxies)
    solver: SolverChain | None = None
    if captcha is not None:
        solver = SolverChain({"captcha": captcha})
    else:
        solver = solver_chain_from(settings, guard)
    try:
        return Fleet.from_settings(settings, proxies=proxies, captcha=solver)
    except ChromiumNotFoundError as exc:  # HTTP tiers only; browser scrapes answer 422
        if notice:  # the demo says it its own way (what it skips)
            print(f"# {exc}: scrapes use the HTTP tiers only", file=sys.stderr)
        return Fleet(proxies=proxies, captcha=solver)


def platform_registry(settings: Settings, *, browsers: bool) -> Any:
    """Every installed adapter, the scrape adapter on the fleet behind the SSRF guard
    (its browser engines offered only where a Chromium is)."""
    from portwright.adapters import default_registry
    from portwright.adapters.scrape import ENGINES, ScrapeAdapter
    from portwright.gateway import UrlGuard

    registry = default_registry()
    engines = ENGINES if browsers else ("auto", "http")
    guard = UrlGuard.from_allowlist(settings.url_allowlist)
    registry.register(ScrapeAdapter.on_fleet(guard, engines=engines))
    return registry


def has_chromium(settings: Settings) -> bool:
    """Whether this process can have browsers: a remote one configured, or a Chromium here."""
    from portwright.engines import ChromiumNotFoundError, find_chromium

    if any(p.kind == "cdp" for p in settings.browsers.providers):
        return True
    try:
        find_chromium(settings.chromium_path)
    except ChromiumNotFoundError:
        return False
    return True


def start_runtime(
    settings: Settings,
    *,
    captcha: Any = None,
    run_workers: bool = True,
    browser_notice: bool = True,
) -> tuple[Any, Any]:
    """The runtime every platform process runs (`up`, `demo`, `worker`, `api`) and its vault:
    every adapter, the fleet for browser work, portal credentials from the vault."""
    from portwright.orchestrator import Runtime
    from portwright.resources import identity_from
    from portwright.resources.vault import Vault

    vault = Vault.from_settings(settings)
    if run_workers:
        # scrapes climb the engine ladder (scenario 2); adapters use the identities configured
        fleet = _fleet(settings, captcha, notice=browser_notice)
        registry = platform_registry(settings, browsers=fleet.browsers is not None)
        runtime = Runtime(
            settings, registry, secrets=vault, captcha=captcha, fleet=fleet,
            identity=identity_from(settings, fleet.proxies),
        )  # fmt: skip
    else:  # a gateway only: the registry validates input, workers elsewhere run the jobs
        registry = platform_registry(settings, browsers=has_chromium(settings))
        runtime = Runtime(settings, registry, run_workers=False, secrets=vault)
    return runtime.start(), vault


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_stack(
    settings: Settings,
    *,
    world: Any | None,
    host: str = "127.0.0.1",
    port: int | None = None,
    captcha: Any = None,
    browser_notice: bool = True,
) -> Stack:
    """Start the runtime (workers included) and the gateway on a background thread."""
    import uvicorn

    from portwright.gateway import create_app, server_config
    from portwright.orchestrator import JobService

    if world is not None:  # reach and trust it: its ports, webhook sources, resources
        settings = sandbox_world().settings_for(settings, world)
    runtime, vault = start_runtime(settings, captcha=captcha, browser_notice=browser_notice)
    service = JobService(runtime)
    port = port or _free_port(host)
    if settings.public_url is None:  # links in customers' emails lead to this gateway
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    app = create_app(service, settings, vault=vault)
    # log_config=None: uvicorn's loggers keep ours (configure_logging), not its own formatters.
    config = server_config(
        app, settings, host=host, port=port, log_level="warning", access_log=False, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        runtime.stop()
        raise RuntimeError(f"the gateway did not start on {host}:{port}")
    gateway_url = f"http://{host}:{port}"
    if world is not None:  # its webhooks come to this gateway
        sandbox_world().connect(world, gateway_url)
    return Stack(settings, runtime, service, vault, gateway_url, server, thread)
