"""Assembling the one-process stack `up` and `demo` run: sandbox, runtime, gateway.

The runtime is built by the composition root (`portwright.composition`), as for `api`,
`worker`, the relay and the tests.

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
import threading
import time
from dataclasses import dataclass
from typing import Any

from portwright.composition import has_chromium, platform_registry, platform_runtime
from portwright.settings import Settings

__all__ = [
    "Stack",
    "has_chromium",
    "platform_registry",
    "sandbox_world",
    "start_runtime",
    "start_stack",
]


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


def start_runtime(
    settings: Settings,
    *,
    captcha: Any = None,
    run_workers: bool = True,
    browser_notice: bool = True,
) -> tuple[Any, Any]:
    """The started platform runtime and its vault (`portwright.composition`)."""
    return platform_runtime(
        settings, captcha=captcha, run_workers=run_workers, browser_notice=browser_notice
    )


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
        app,
        settings,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,
        loop="asyncio" if settings.event_loop == "asyncio" else "auto",
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
