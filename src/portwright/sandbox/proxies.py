"""Forward HTTP proxies with distinct identities: one sandbox TCP service per proxy.

Each proxy relays to loopback targets only (anything else is refused with 403)
and stands for one network identity of a tier and a country:

- absolute-form requests (`GET http://127.0.0.1:port/path HTTP/1.1`) are sent on
  with any client-sent `x-sandbox-proxy-*` header removed and
  `x-sandbox-proxy-identity: <name>` (plus `-tier`, `-country`) added, so
  portals see the proxy's identity;
- `CONNECT host:port` opens a raw tunnel; the portal then sees the proxy's
  source address (`ip:127.0.0.N`, see `ProxyInfo.source_ip`), as a real site
  sees a proxy's exit IP.

One request per connection: the upstream request carries `Connection: close`
and the client connection closes after the answer (upgrades pass through).
Optional Basic proxy auth (options `username`, `password`; 407 otherwise).
The service's own chaos knobs fault the proxy itself: `down` and `rate_5xx`
answer 502, `latency_ms` delays. Ledger kind "request" (key host:port, actor
the identity) unless option `record_requests` is false.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import NotRequired, TypedDict
from urllib.parse import urlsplit

from portwright.sandbox._world import SandboxWorld, ServiceContext, ServiceSpec, TcpHandler

__all__ = [
    "DEFAULT_PROXIES",
    "ProxyDef",
    "ProxyInfo",
    "build_proxy",
    "proxy_catalog",
    "proxy_spec",
    "specs",
]

ROLE = "forward-proxy"
HEAD_TIMEOUT_S = 10.0
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
    }
)


@dataclass(frozen=True, slots=True)
class ProxyDef:
    """One proxy of the default set."""

    name: str
    tier: str
    country: str


DEFAULT_PROXIES = (
    ProxyDef("proxy-dc-1", "datacenter", "US"),
    ProxyDef("proxy-dc-2", "datacenter", "US"),
    ProxyDef("proxy-dc-3", "datacenter", "DE"),
    ProxyDef("proxy-dc-4", "datacenter", "GB"),
    ProxyDef("proxy-res-1", "residential", "GB"),
    ProxyDef("proxy-res-2", "residential", "US"),
    ProxyDef("proxy-res-3", "residential", "FR"),
    ProxyDef("proxy-mob-1", "mobile", "GB"),
    ProxyDef("proxy-mob-2", "mobile", "US"),
)


class ProxyInfo(TypedDict):
    """A proxy as the proxy pool sees it; `url` is what an HTTP client's `proxy=` takes."""

    name: str
    url: str
    tier: str
    country: str
    source_ip: str
    username: NotRequired[str]
    password: NotRequired[str]


def proxy_spec(
    name: str,
    tier: str,
    country: str,
    *,
    source_ip: str = "127.0.0.1",
    username: str | None = None,
    password: str | None = None,
) -> ServiceSpec:
    """A forward proxy service named `name` (its identity)."""
    options = {
        "role": ROLE,
        "tier": tier,
        "country": country,
        "source_ip": source_ip,
        "username": username,
        "password": password,
        "record_requests": True,
    }
    return ServiceSpec(name, build_proxy, kind="tcp", options=options)


def specs(proxies: tuple[ProxyDef, ...] = DEFAULT_PROXIES) -> list[ServiceSpec]:
    """The default proxies; each leaves from its own loopback address 127.0.0.(11+i)."""
    return [
        proxy_spec(p.name, p.tier, p.country, source_ip=f"127.0.0.{11 + i}")
        for i, p in enumerate(proxies)
    ]


def proxy_catalog(world: SandboxWorld) -> list[ProxyInfo]:
    """Every forward proxy of `world`, for a proxy pool."""
    catalog: list[ProxyInfo] = []
    for name in world.names():
        opts = world.context(name).options
        if opts.get("role") != ROLE:
            continue
        info = ProxyInfo(
            name=name,
            url=world.url(name),
            tier=str(opts["tier"]),
            country=str(opts["country"]),
            source_ip=str(opts.get("source_ip", "127.0.0.1")),
        )
        if opts.get("username"):
            info["username"] = str(opts["username"])
            info["password"] = str(opts.get("password") or "")
        catalog.append(info)
    return catalog


def build_proxy(ctx: ServiceContext) -> TcpHandler:
    """The stream handler of one forward proxy."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve(ctx, reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return handle


async def _serve(
    ctx: ServiceContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        await _reply(writer, 400, "Bad Request", "malformed request line")
        return
    method, target, version = parts
    headers = [
        (name.strip(), value.strip())
        for name, sep, value in (line.partition(":") for line in lines[1:] if line)
        if sep
    ]
    if not await _chaos_passes(ctx, writer):
        return
    if not _authorized(ctx, headers):
        await _reply(
            writer,
            407,
            "Proxy Authentication Required",
            "proxy authentication required",
            'Proxy-Authenticate: Basic realm="sandbox"\r\n',
        )
        return
    destination = _destination(method, target)
    if destination is None:
        await _reply(writer, 400, "Bad Request", "absolute-form http:// URL or CONNECT required")
        return
    host, port = destination
    if not _is_loopback(host):
        await _reply(writer, 403, "Forbidden", f"proxy refuses non-loopback target {host}")
        return
    upstream = await _connect(ctx, host, port)
    if upstream is None:
        await _reply(writer, 502, "Bad Gateway", f"cannot reach {host}:{port}")
        return
    up_reader, up_writer = upstream
    if ctx.options.get("record_requests", True):
        identity = str(ctx.options.get("identity") or ctx.name)
        ctx.ledger.record("request", f"{host}:{port}", identity, method=method)
    try:
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            up_writer.write(_rewrite(ctx, method, target, version, headers))
        await _relay(reader, writer, up_reader, up_writer)
    finally:
        up_writer.close()
        with contextlib.suppress(OSError):
            await up_writer.wait_closed()


async def _chaos_passes(ctx: ServiceContext, writer: asyncio.StreamWriter) -> bool:
    knobs = ctx.chaos.knobs
    low, high = knobs.latency_ms
    if high > 0:
        await asyncio.sleep((low + (high - low) * ctx.chaos.draw("latency")) / 1000.0)
    if ctx.chaos.is_down() or ctx.chaos.chance(knobs.rate_5xx, "5xx"):
        await _reply(writer, 502, "Bad Gateway", f"proxy {ctx.name} is failing")
        return False
    return True


def _authorized(ctx: ServiceContext, headers: list[tuple[str, str]]) -> bool:
    username = ctx.options.get("username")
    if not username:
        return True
    expected = f"{username}:{ctx.options.get('password') or ''}"
    for name, value in headers:
        scheme, _, encoded = value.partition(" ")
        if name.lower() == "proxy-authorization" and scheme.lower() == "basic":
            try:
                sent = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except ValueError:
                return False
            return hmac.compare_digest(sent.encode(), expected.encode())
    return False


def _destination(method: str, target: str) -> tuple[str, int] | None:
    """(host, port) of a CONNECT authority or an absolute-form http:// URL; None if malformed."""
    try:
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host, port = host.strip("[]"), int(port_text)
        else:
            url = urlsplit(target)
            if url.scheme != "http":
                return None
            host, port = url.hostname or "", url.port or 80
    except ValueError:
        return None
    return (host, port) if host and 0 < port < 65536 else None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _connect(
    ctx: ServiceContext, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    host = "127.0.0.1" if host.lower() == "localhost" else host
    source = str(ctx.options.get("source_ip") or "")
    if source and ":" not in host:
        with contextlib.suppress(OSError):
            return await asyncio.open_connection(host, port, local_addr=(source, 0))
    try:
        return await asyncio.open_connection(host, port)
    except OSError:
        return None


def _rewrite(
    ctx: ServiceContext, method: str, target: str, version: str, headers: list[tuple[str, str]]
) -> bytes:
    url = urlsplit(target)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    named_by_connection = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    upgrade = any(name.lower() == "upgrade" for name, _ in headers)
    kept = [
        (name, value)
        for name, value in headers
        if name.lower() not in _HOP_BY_HOP
        and not name.lower().startswith("x-sandbox-proxy-")
        and (name.lower() not in named_by_connection or name.lower() == "upgrade")
    ]
    if not any(name.lower() == "host" for name, _ in kept):
        kept.insert(0, ("Host", url.netloc))
    kept += [
        ("Connection", "Upgrade" if upgrade else "close"),
        ("x-sandbox-proxy-identity", str(ctx.options.get("identity") or ctx.name)),
        ("x-sandbox-proxy-tier", str(ctx.options.get("tier", ""))),
        ("x-sandbox-proxy-country", str(ctx.options.get("country", ""))),
    ]
    lines = [f"{method} {path} {version}"] + [f"{name}: {value}" for name, value in kept]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until the upstream side is done (the caller closes both ends)."""
    upload = asyncio.create_task(_pipe(client_reader, up_writer))
    try:
        await _pipe(up_reader, client_writer)
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upload


async def _reply(
    writer: asyncio.StreamWriter, status: int, reason: str, text: str, extra: str = ""
) -> None:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        f"X-Sandbox-Proxy-Error: {status}\r\n{extra}\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
