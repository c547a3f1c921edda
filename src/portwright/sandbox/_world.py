"""The sandbox world: every simulated portal and piece of infrastructure on loopback.

Each service is described by a `ServiceSpec` whose `build` returns either an
ASGI app (a portal) or a raw TCP handler (a forward proxy). The world binds
every socket up front (so every URL is known before anything starts), runs all
servers on one event loop in a background thread, and exposes one admin
endpoint to read ledgers and flip chaos knobs at runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp

from portwright.sandbox._chaos import ChaosKnobs, ChaosMiddleware, ChaosState
from portwright.sandbox._ledger import Ledger

__all__ = ["SandboxWorld", "ServiceContext", "ServiceSpec", "TcpHandler"]

TcpHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class ServiceContext:
    """What a service gets when it is built: its identity, chaos, ledger and the world."""

    name: str
    seed: int
    chaos: ChaosState
    ledger: Ledger
    options: dict[str, Any]
    world: SandboxWorld

    def url(self, service: str) -> str:
        """The base URL of another service of the same world (known before start)."""
        return self.world.url(service)


@dataclass(frozen=True)
class ServiceSpec:
    """A sandbox service: `build(ctx)` returns an ASGI app; for kind "tcp", a TCP handler;
    for kind "protocol", an asyncio protocol factory (e.g. an SMTP server's, or an aiohttp
    app's request handler), served on the service's socket (its URL then starts with
    `scheme://`). `build` may return an awaitable of these, awaited on the world's loop."""

    name: str
    build: Callable[[ServiceContext], Any]
    kind: Literal["asgi", "tcp", "protocol"] = "asgi"
    knobs: ChaosKnobs = field(default_factory=ChaosKnobs)
    options: dict[str, Any] = field(default_factory=dict)
    bind_host: str = "127.0.0.1"
    chaos_wrapped: bool = True
    scheme: str = "http"


@dataclass
class _Running:
    spec: ServiceSpec
    ctx: ServiceContext
    sock: socket.socket
    url: str
    target: Any = None


class SandboxWorld:
    """Starts sandbox services on loopback in a background thread.

    >>> with SandboxWorld(default_services(), seed=7) as world:
    ...     world.url("consulate")
    """

    def __init__(
        self,
        specs: Iterable[ServiceSpec],
        *,
        seed: int = 1,
        host: str = "127.0.0.1",
        admin_port: int = 0,
    ) -> None:
        self.seed = seed
        self.host = host
        self._services: dict[str, _Running] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[Any] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        for spec in specs:
            if spec.name in self._services:
                raise ValueError(f"duplicate sandbox service name {spec.name!r}")
            sock = _bind(spec.bind_host if spec.bind_host != "127.0.0.1" else host, 0)
            port = sock.getsockname()[1]
            scheme = spec.scheme
            url = f"{scheme}://{sock.getsockname()[0]}:{port}"
            chaos = ChaosState(spec.name, seed, spec.knobs.model_copy(deep=True))
            ctx = ServiceContext(spec.name, seed, chaos, Ledger(), dict(spec.options), self)
            self._services[spec.name] = _Running(spec, ctx, sock, url)
        self._admin_sock = _bind(host, admin_port)
        self.admin_url = f"http://{host}:{self._admin_sock.getsockname()[1]}"

    # -- lookups -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._services)

    def url(self, name: str) -> str:
        try:
            return self._services[name].url
        except KeyError:
            known = ", ".join(sorted(self._services))
            raise KeyError(f"no sandbox service {name!r}; known: {known}") from None

    def urls(self) -> dict[str, str]:
        return {name: run.url for name, run in self._services.items()}

    def chaos(self, name: str) -> ChaosState:
        return self._services[name].ctx.chaos

    def ledger(self, name: str) -> Ledger:
        return self._services[name].ctx.ledger

    def context(self, name: str) -> ServiceContext:
        return self._services[name].ctx

    def target(self, name: str) -> Any:
        """The built object of a service (its ASGI app or TCP handler), for in-process tests."""
        return self._services[name].target

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> SandboxWorld:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="sandbox-world", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"sandbox world did not start within {timeout}s")
        if self._error is not None:
            raise RuntimeError("sandbox world failed to start") from self._error
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        for server in self._servers:
            if isinstance(server, uvicorn.Server):
                server.should_exit = True
            else:
                loop.call_soon_threadsafe(server.close)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SandboxWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - any start failure is re-raised by start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        from portwright.sandbox._admin import build_admin_app

        tasks: list[asyncio.Task[Any]] = []
        for run in self._services.values():
            built = run.spec.build(run.ctx)
            if inspect.isawaitable(built):  # a service that must set itself up on the loop
                built = await built
            run.target = built
            if run.spec.kind in ("tcp", "protocol"):
                if run.spec.kind == "tcp":
                    server = await asyncio.start_server(built, sock=run.sock)
                else:
                    server = await asyncio.get_running_loop().create_server(built, sock=run.sock)
                self._servers.append(server)
                tasks.append(asyncio.create_task(server.serve_forever()))
            else:
                app: ASGIApp = built
                if run.spec.chaos_wrapped:
                    app = ChaosMiddleware(app, run.ctx.chaos)
                tasks.append(asyncio.create_task(self._serve_asgi(app, run.sock)))
        tasks.append(asyncio.create_task(self._serve_asgi(build_admin_app(self), self._admin_sock)))
        await self._wait_started()
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        for run in self._services.values():  # e.g. an aiohttp server: its open connections
            shutdown = getattr(run.target, "shutdown", None)
            if run.spec.kind == "protocol" and shutdown is not None:
                with contextlib.suppress(Exception):
                    await shutdown(1.0)

    async def _serve_asgi(self, app: ASGIApp, sock: socket.socket) -> None:
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
            log_config=None,  # keep the process's logging (JSON, masked), not uvicorn's own
        )
        server = uvicorn.Server(config)
        self._servers.append(server)
        await server.serve(sockets=[sock])

    async def _wait_started(self) -> None:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            servers = [s for s in self._servers if isinstance(s, uvicorn.Server)]
            expected = 1 + sum(1 for r in self._services.values() if r.spec.kind == "asgi")
            if len(servers) == expected and all(s.started for s in servers):
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("sandbox servers did not start")

    def describe(self) -> Iterator[tuple[str, str]]:
        """(name, url) for every service, then the admin endpoint."""
        for name, run in self._services.items():
            yield name, run.url
        yield "admin", self.admin_url


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock
