"""A TCP proxy on 127.0.0.1 in front of PostgreSQL that a test can take down and bring back:
a real outage as a client sees it, without stopping the shared server.

`down()` cuts every open connection and then, by mode, refuses new ones ("refuse": the port
is closed, like a stopped server) or accepts them and never answers ("blackhole": like a
host that went away or a firewall that drops packets). `up()` serves again on the same port.

`allow_connections(database, allow=False)` is the other kind of outage, made on the server
itself: the database refuses new sessions and its open ones are terminated.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Literal

import sqlalchemy as sa

from tests.conftest import _pg_admin

__all__ = ["DatabaseProxy", "allow_connections"]

Mode = Literal["refuse", "blackhole"]


class DatabaseProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._held: list[socket.socket] = []
        self._mode: Mode | None = None  # None: serving
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------

    def start(self) -> DatabaseProxy:
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="db-proxy")
        self._thread.start()
        return self

    def url_for(self, url: str) -> str:
        """`url` (postgresql://user@host:port/db) pointed at this proxy instead."""
        scheme, rest = url.split("://", 1)
        user, _, hostpart = rest.rpartition("@")
        _, _, path = hostpart.partition("/")
        auth = f"{user}@" if user else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/{path}"

    def down(self, mode: Mode = "refuse") -> None:
        with self._lock:
            self._mode = mode
            pairs, self._pairs = self._pairs, []
            if mode == "refuse" and self._listener is not None:
                self._listener.close()
                self._listener = None
        for a, b in pairs:
            _abort(a)
            _abort(b)

    def up(self) -> None:
        with self._lock:
            self._mode = None
            held, self._held = self._held, []
            if self._listener is None:
                self._listen()
        for sock in held:
            _abort(sock)

    def stop(self) -> None:
        self._closed.set()
        self.down("refuse")
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            _abort(sock)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> DatabaseProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the proxy --------------------------------------------------------------------

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        sock.settimeout(0.05)
        self.port = sock.getsockname()[1]
        self._listener = sock

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                self._closed.wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                mode = self._mode
                if mode == "blackhole":
                    self._held.append(client)
                    continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _abort(client)
                continue
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(
                target=_pipe, args=(client, server), daemon=True, name="db-proxy-pipe"
            ).start()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes (or the proxy cuts them)."""
    sel = selectors.DefaultSelector()
    try:
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        while True:
            for key, _ in sel.select(timeout=1.0):
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                data = src.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except (OSError, ValueError):
        return
    finally:
        sel.close()
        _abort(a)
        _abort(b)


def _abort(sock: socket.socket) -> None:
    """Close with a reset, as a crashed server or a cut cable would leave it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


def allow_connections(database: str, *, allow: bool) -> None:
    """Make the PostgreSQL `database` unreachable (and terminate its sessions), or reachable."""
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {allow}'))
            if not allow:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                )
    finally:
        admin.dispose()
