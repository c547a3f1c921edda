"""Assembling the one-process stack `up` and `demo` run: sandbox, runtime, gateway.

The sandbox's loopback ports go on the SSRF allowlist (nothing else local is
reachable), its webhook sources (consulate payments, the shops) are trusted
with their public test secrets, portal credentials live in the vault, and the
consulate sends its signed payment webhooks to this gateway.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from portwright.settings import Settings

__all__ = ["Stack", "start_stack"]


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


def sandbox_settings(settings: Settings, world: Any) -> Settings:
    """Settings that let the platform reach (and trust) this sandbox world."""
    from portwright.gateway import sandbox_webhook_sources

    ports = sorted({url.rsplit(":", 1)[1] for url in world.urls().values()})
    allow = [*settings.url_allowlist, *(f"127.0.0.1:{port}" for port in ports)]
    sources = {**sandbox_webhook_sources(), **settings.webhook_sources}
    return settings.model_copy(update={"url_allowlist": allow, "webhook_sources": sources})


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
) -> Stack:
    """Start the runtime (workers included) and the gateway on a background thread."""
    import uvicorn

    from portwright.adapters import default_registry
    from portwright.adapters.scrape import ScrapeAdapter
    from portwright.gateway import UrlGuard, Vault, create_app
    from portwright.orchestrator import JobService, Runtime

    if world is not None:
        settings = sandbox_settings(settings, world)
    registry = default_registry()
    registry.register(ScrapeAdapter.with_guard(UrlGuard.from_allowlist(settings.url_allowlist)))
    vault = Vault.from_settings(settings)
    runtime = Runtime(settings, registry, secrets=vault, captcha=captcha).start()
    service = JobService(runtime)
    port = port or _free_port(host)
    config = uvicorn.Config(
        create_app(service, settings), host=host, port=port, log_level="warning", access_log=False
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
    if world is not None:
        world.context("consulate").options["payment_webhook_url"] = (
            f"{gateway_url}/v1/hooks/consulate"
        )
    return Stack(settings, runtime, service, vault, gateway_url, server, thread)
