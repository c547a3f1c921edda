"""A loopback forward proxy that runs the SSRF guard on every request a browser makes.

Playwright's request routing does not see redirect hops, and fetching through
the route loses the headers the browser's network stack adds; a proxy sees
everything the browser sends — each redirect hop, every subresource, each
CONNECT tunnel (https, WebSocket) — with the browser's own headers. A guarded
browser fetch gets a `GuardProxy` of its own: the context's proxy points at
it, and it forwards what the guard lets through to the real proxy (HTTP) or
straight to the target — at the address the guard checked, never a second
lookup's answer (through a real proxy, the CONNECT or request line names that
address, the Host header and TLS server name stay the site's). One request per
client connection (`Connection:
close`), so nothing can ride an already checked connection to another host.
A refusal answers 403 to the browser and is kept in `refused`, where the
fetch finds the reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import replace
from types import TracebackType
from urllib.parse import urlsplit

from portwright.engines.ladder._http import Guard
from portwright.resources.proxies import Proxy
from portwright.sdk import PermanentError

__all__ = ["GuardProxy"]

_MAX_HEAD = 64 * 1024
_HEAD_TIMEOUT_S = 30.0
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer"}
)
_REFUSED = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class GuardProxy:
    """`async with GuardProxy(guard, upstream) as gp:` then give the browser `gp.proxy`."""

    def __init__(self, guard: Guard, upstream: Proxy | None) -> None:
        if upstream is not None and not upstream.server.startswith("http://"):
            raise PermanentError(
                f"proxy: a guarded browser fetch chains only to http:// proxies, "
                f"not {upstream.server.split(':', 1)[0]}"
            )
        self.guard = guard
        self.upstream = upstream
        self.refused: list[PermanentError] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> GuardProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def proxy(self) -> Proxy:
        """The identity to give the browser: this proxy, keeping the upstream's country."""
        assert self._server is not None, "use GuardProxy as an async context manager"
        port = self._server.sockets[0].getsockname()[1]
        server = f"http://127.0.0.1:{port}"
        if self.upstream is None:
            return Proxy(name="guard", server=server, tier="direct", country="", provider="guard")
        return replace(self.upstream, server=server, username=None, password=None)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT_S)
            if len(head) > _MAX_HEAD:
                return
            await self._relay(head.decode("latin-1"), reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _relay(
        self, head: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_line, *lines = [line for line in head.split("\r\n") if line]
        method, target, _version = request_line.split(" ", 2)
        tunnel = method.upper() == "CONNECT"
        url = f"https://{target}/" if tunnel else target
        try:
            addresses = await self.guard(url)
        except Exception as exc:  # noqa: BLE001 - the guard's refusal, whatever its type
            if not isinstance(exc, PermanentError):
                exc = PermanentError(f"url refused by the SSRF guard: {exc}", url=url)
            self.refused.append(exc)
            writer.write(_REFUSED)
            await writer.drain()
            return
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (443 if tunnel else 80)
        if addresses:  # pinned: dial (or ask the upstream for) the checked address
            host = addresses[0].split("%", 1)[0]
            dialed = f"[{host}]" if ":" in host else host
            target = f"{dialed}:{port}"
            if not tunnel:
                netloc = f"{dialed}:{parts.port}" if parts.port else dialed
                url = parts._replace(netloc=netloc).geturl()
        up = self.upstream
        try:
            if up is not None:
                up_parts = urlsplit(up.server)
                up_reader, up_writer = await asyncio.open_connection(
                    up_parts.hostname, up_parts.port or 80
                )
            else:
                up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.write(_BAD_GATEWAY)
            await writer.drain()
            return
        try:
            if tunnel:
                await self._tunnel(target, reader, writer, up_reader, up_writer)
            else:
                await self._forward(method, url, lines, reader, writer, up_reader, up_writer)
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()

    def _auth(self) -> list[str]:
        up = self.upstream
        if up is None or not up.username:
            return []
        token = base64.b64encode(f"{up.username}:{up.password or ''}".encode()).decode()
        return [f"Proxy-Authorization: Basic {token}"]

    async def _tunnel(
        self,
        target: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        if self.upstream is not None:
            lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", *self._auth()]
            up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await up_writer.drain()
            answer = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT_S)
            if b" 200" not in answer.split(b"\r\n", 1)[0]:
                writer.write(answer)
                await writer.drain()
                return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _forward(
        self,
        method: str,
        url: str,
        lines: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        parts = urlsplit(url)
        kept = [line for line in lines if line.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
        if self.upstream is not None:
            first, extra = f"{method} {url} HTTP/1.1", self._auth()
        else:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            first, extra = f"{method} {path} HTTP/1.1", []
        out = [first, *kept, *extra, "Connection: close"]
        up_writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        length = 0
        for line in kept:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
        if length:  # the body only: a second request on this connection is never relayed
            up_writer.write(await reader.readexactly(length))
        await up_writer.drain()
        await _pipe(up_reader, writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()
