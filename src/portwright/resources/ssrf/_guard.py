"""The SSRF guard: resolve a URL's host, refuse unless every address is public or allowlisted.

Checked when the request arrives and again, by `GuardedTransport`, on every
connection the fetch makes (each redirect hop), which also pins the
connection to the address that was checked (no DNS rebinding in between).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from portwright.resources.ssrf._policy import AllowEntry, IPAddress, parse_allowlist, refusal_reason

__all__ = [
    "PerOrigin",
    "Resolver",
    "StaticResolver",
    "UrlGuard",
    "UrlRefusedError",
    "per_origin",
    "system_resolver",
    "url_origin",
    "url_parts",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
T = TypeVar("T")


class UrlRefusedError(ValueError):
    """A URL the guard will not let anything reach; `reason` says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


RESOLVE_TTL_S = 5.0  # how long `system_resolver` keeps a name's answer
_RESOLVE_CACHE_MAX = 4096
_resolved: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver returns for `host` (IPv4 and IPv6).

    An IP address in its usual form is its own answer (no lookup). A name's answer is
    kept for `RESOLVE_TTL_S` seconds (a batch fetching one site resolves it a few times a
    minute, not once a page). That weakens nothing: every check still judges the
    addresses it returns, and the fetch connects to those very addresses (pinned), so a
    name that re-points (DNS rebinding) is judged on what it is connected to.
    """
    if _is_address(host):
        return [host]
    key = (host.lower(), port)
    now = time.monotonic()
    hit = _resolved.get(key)
    if hit is not None and hit[0] > now:
        return list(hit[1])
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if len(_resolved) >= _RESOLVE_CACHE_MAX:
        _resolved.clear()  # bounded: many names at once only resolve again
    _resolved[key] = (now + RESOLVE_TTL_S, addresses)
    return list(addresses)


@functools.lru_cache(maxsize=4096)
def _is_address(host: str) -> bool:
    """Whether `host` is an IP address in its usual form, remembered (checked per page)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class StaticResolver:
    """A resolver from a fixed table (tests, fixed deployments); unknown names do not resolve."""

    def __init__(self, table: Mapping[str, Iterable[str]]) -> None:
        self._table = {k.lower().rstrip("."): list(v) for k, v in table.items()}

    async def __call__(self, host: str, port: int) -> list[str]:
        if _is_address(host):
            return [host]
        found = self._table.get(host.lower().rstrip("."))
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} does not resolve")
        return found


# httpx's split of a URL with a scheme and an authority (its URL_REGEX): the authority
# runs to the first "/", "?" or "#".
_ORIGIN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*")
_MAX_URL_LENGTH = 65_536  # httpx refuses longer URLs


def url_origin(text: str) -> str | None:
    """`text`'s scheme, "://" and authority (up to the first "/", "?" or "#"), or None when
    it does not start with a scheme and "//". httpx and `urllib.parse.urlsplit` end the
    authority there too, so whatever either reads of the scheme and authority alone
    (the host, the port, the credentials; `urlsplit`'s netloc and its errors) reads the
    same of this prefix as of the whole URL: a batch's URLs share a few origins, which
    makes that reading worth remembering per origin."""
    origin = _ORIGIN.match(text)
    return None if origin is None else origin.group()


class PerOrigin(Generic[T]):
    """A reading of a URL that depends on its scheme and authority alone (a site, a host),
    remembered per origin (`url_origin`): every fetch asks it, and a batch's URLs share a
    few origins. A URL without an origin is read whole, every time; an error is raised as
    the reading raises it, and not remembered."""

    def __init__(self, read: Callable[[str], T]) -> None:
        self._read = read
        self._by_origin = functools.lru_cache(maxsize=4096)(read)
        functools.update_wrapper(self, read)

    def __call__(self, url: str) -> T:
        origin = url_origin(url)
        return self._read(url) if origin is None else self._by_origin(origin)

    def cache_info(self) -> Any:
        return self._by_origin.cache_info()


def per_origin(read: Callable[[str], T]) -> PerOrigin[T]:
    """`read` remembered per origin (`PerOrigin`), as a decorator."""
    return PerOrigin(read)


@functools.lru_cache(maxsize=4096)
def url_parts(text: str) -> tuple[str, str, bool, int | None]:
    """A URL's scheme, host, whether it carries credentials, and its port (httpx's parser,
    remembered: a fetch checks its URL several times, once per guard and per layer).

    These four come from the scheme and the authority alone; what follows them can only
    make httpx refuse the URL (a control character or a lone surrogate, which are not
    printable, or a URL over its length limit; the path rules cannot fail after an
    authority). So a URL of a usual length whose rest is printable is answered from its
    origin's parse, remembered per origin (a batch's URLs share a few), and any other URL
    is parsed whole, as before."""
    origin = _ORIGIN.match(text)
    if origin is not None and len(text) <= _MAX_URL_LENGTH:
        rest = text[origin.end() :]
        if rest.isprintable():
            return _origin_parts(origin.group())
    return _parse_parts(text)


@functools.lru_cache(maxsize=4096)
def _origin_parts(origin: str) -> tuple[str, str, bool, int | None]:
    return _parse_parts(origin)


def _parse_parts(text: str) -> tuple[str, str, bool, int | None]:
    parsed = httpx.URL(text)
    return parsed.scheme, parsed.host, bool(parsed.userinfo), parsed.port


@functools.lru_cache(maxsize=4096)
def _address(raw: str) -> tuple[IPAddress, str | None]:
    """An answer's address and why it may not be reached (None: public), remembered."""
    address = ipaddress.ip_address(raw.split("%", 1)[0])
    return address, refusal_reason(address)


@dataclass(frozen=True)
class UrlGuard:
    """Decides which URLs user input may point at. Strict by default: public addresses only."""

    allow: tuple[AllowEntry, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)
    schemes: frozenset[str] = frozenset({"http", "https"})
    _verdicts: dict[tuple[str, int], bool] = field(
        default_factory=dict, compare=False, repr=False, init=False
    )

    @classmethod
    def from_allowlist(cls, entries: Iterable[str], resolver: Resolver | None = None) -> UrlGuard:
        return cls(parse_allowlist(entries), resolver or system_resolver)

    async def check(self, url: str | httpx.URL) -> list[str]:
        """The addresses `url` may be fetched from; UrlRefusedError if it may not be."""
        text = str(url)
        try:
            scheme, host, userinfo, explicit = (
                (url.scheme, url.host, bool(url.userinfo), url.port)
                if isinstance(url, httpx.URL)
                else url_parts(text)
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise UrlRefusedError(text, f"not a valid URL ({exc})") from None
        if scheme not in self.schemes:
            raise UrlRefusedError(text, f"scheme {scheme or 'none'!r} is not http or https")
        if not host:
            raise UrlRefusedError(text, "no host")
        if userinfo:
            raise UrlRefusedError(text, "credentials in URLs are not allowed")
        port = explicit or (443 if scheme == "https" else 80)
        try:
            addresses = await self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise UrlRefusedError(text, f"host {host!r} does not resolve ({exc})") from None
        if not addresses:
            raise UrlRefusedError(text, f"host {host!r} does not resolve")
        for raw in addresses:
            address, reason = _address(raw)
            if reason is not None and not self._allowed(raw, address, port):
                raise UrlRefusedError(text, f"{host} resolves to {address}, {reason}")
        return addresses

    def _allowed(self, raw: str, address: IPAddress, port: int) -> bool:
        """Whether the allowlist lets `address:port` in, remembered per guard by the
        resolver's answer `raw` (the text `address` was read from: hashing the text is
        cheaper than the address object) — a batch checks the same address every page."""
        key = (raw, port)
        known = self._verdicts.get(key)
        if known is None:
            if len(self._verdicts) >= _RESOLVE_CACHE_MAX:
                self._verdicts.clear()
            known = any(entry.allows(address, port) for entry in self.allow)
            self._verdicts[key] = known
        return known
