"""The SSRF guard refuses the probe set unless allowlisted, at request time and per redirect."""

from __future__ import annotations

import socket

import httpx
import pytest

from portwright.resources.ssrf import (
    StaticResolver,
    UrlGuard,
    UrlRefusedError,
    guarded_client,
    parse_allowlist,
    system_resolver,
)
from portwright.sandbox import SandboxWorld

PROBES = [
    "http://127.0.0.1/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/",
    "http://[::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::a00:1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://localhost:8080/admin",
    "http://rebind.test/",
    "http://user:pass@93.184.216.34/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/",
]


@pytest.fixture
def guard() -> UrlGuard:
    resolver = StaticResolver(
        {
            "localhost": ["127.0.0.1", "::1"],
            "rebind.test": ["93.184.216.34", "127.0.0.1"],
            "public.test": ["93.184.216.34"],
        }
    )
    return UrlGuard(resolver=resolver)


@pytest.mark.parametrize("url", PROBES)
async def test_probe_is_refused(guard: UrlGuard, url: str) -> None:
    """Every probe (private v4/v6, decimal/octal/hex forms, localhost aliases, a name that
    resolves to loopback, metadata, odd schemes) is refused with a reason."""
    with pytest.raises(UrlRefusedError) as refused:
        await guard.check(url)
    assert refused.value.reason


async def test_system_resolver_refuses_localhost_names() -> None:
    """With the real resolver, localhost names resolve to loopback and are refused."""
    for url in ("http://localhost/", "http://localhost.localdomain/", "http://ip6-localhost/"):
        with pytest.raises(UrlRefusedError):
            await UrlGuard().check(url)


async def test_system_resolver_keeps_an_answer_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    """An IP address is not looked up; a name is looked up once per `RESOLVE_TTL_S` (every
    check still judges the addresses, so the kept answer refuses as the fresh one did)."""
    from portwright.resources.ssrf import _guard

    lookups: list[str] = []
    real = socket.getaddrinfo

    def counting(host: str, *args: object, **kwargs: object) -> object:
        lookups.append(host)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    monkeypatch.setattr(_guard, "_resolved", {})
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    assert await system_resolver("::1", 80) == ["::1"]
    assert lookups == []
    first = await system_resolver("localhost", 8080)
    assert await system_resolver("LOCALHOST", 8080) == first
    assert lookups == ["localhost"]
    for _ in range(2):
        with pytest.raises(UrlRefusedError):
            await UrlGuard().check("http://localhost:8080/")
    assert lookups == ["localhost"]
    monkeypatch.setattr(_guard, "RESOLVE_TTL_S", 0.0)
    monkeypatch.setattr(_guard, "_resolved", {})
    await system_resolver("localhost", 8080)
    await system_resolver("localhost", 8080)
    assert lookups == ["localhost"] * 3


async def test_public_and_allowlisted_addresses_pass(guard: UrlGuard) -> None:
    """A public name passes; a loopback port passes only when allowlisted (port-exact)."""
    assert await guard.check("https://public.test/x") == ["93.184.216.34"]
    allowing = UrlGuard(parse_allowlist(["127.0.0.1:8123", "[::1]:*", "10.0.0.0/8"]))
    assert await allowing.check("http://127.0.0.1:8123/") == ["127.0.0.1"]
    assert await allowing.check("http://[::1]:9/") == ["::1"]
    assert await allowing.check("http://10.9.8.7/") == ["10.9.8.7"]
    with pytest.raises(UrlRefusedError):
        await allowing.check("http://127.0.0.1:8124/")


def test_malformed_allowlist_entry_names_it() -> None:
    """A bad allowlist entry is a ValueError naming the entry."""
    with pytest.raises(ValueError, match="not-an-ip"):
        parse_allowlist(["not-an-ip:80"])


async def test_redirects_are_checked_hop_by_hop(world: SandboxWorld) -> None:
    """Through the guarded client an allowlisted page redirecting to a non-allowlisted port
    (or to the metadata address) is refused; a redirect within the allowlist is followed."""
    allow = [world.url(n).removeprefix("http://") for n in ("redirector", "echo")]
    guard = UrlGuard.from_allowlist(allow)
    base = world.url("redirector")
    async with guarded_client(guard) as http:
        ok = await http.get(f"{base}/to", params={"u": f"{world.url('echo')}/?k=fine"})
        assert ok.status_code == 200
        assert "hello fine" in ok.text
        for target in (f"{world.url('echo-hidden')}/", "http://169.254.169.254/"):
            with pytest.raises(UrlRefusedError):
                await http.get(f"{base}/to", params={"u": target})
    hidden_hits = [e for e in world.ledger("echo-hidden").entries() if e.kind == "hit"]
    assert hidden_hits == []


async def test_connection_is_pinned_to_the_checked_address(world: SandboxWorld) -> None:
    """A name is fetched from the address the guard checked, keeping its Host header."""
    port = world.url("echo").rsplit(":", 1)[1]
    resolver = StaticResolver({"echo.test": ["127.0.0.1"]})
    guard = UrlGuard(parse_allowlist([f"127.0.0.1:{port}"]), resolver)
    async with guarded_client(guard) as http:
        response = await http.get(f"http://echo.test:{port}/?k=pinned")
    assert response.status_code == 200
    assert response.request.headers["host"] == f"echo.test:{port}"
    with pytest.raises(httpx.ConnectError):
        async with guarded_client(UrlGuard(parse_allowlist(["127.0.0.1:1"]))) as http:
            await http.get("http://127.0.0.1:1/")


# URLs whose reading by httpx has a corner: case, credentials, IPv6, bad IPv4 and ports,
# IDNA, spaces, control characters and surrogates after the authority, no authority.
ODD_URLS = [
    "http://a.test/x",
    "HTTP://A.TEST:80/x?y#z",
    "https://a.test:443",
    "https://a.test:8443/",
    "http://u:p@a.test/",
    "http://@a.test/",
    "http://[::1]:8080/x",
    "http://[::1",
    "http://999.1.1.1/",
    "http://a.test:99999/",
    "http://a.test:x/",
    "http://xn--bcher-kva.ch/",
    "http://bücher.ch/p",
    "http://a.test/p q",
    "http://a.test/p\tq",
    "http://a.test/p\x7fq",
    "http://a.test/\ud800",
    "http://a.test/\u2028",
    "http://a.test?x",
    "http://a.test#f",
    "http:///p",
    "http://a.test/" + "x" * 70_000,
    "http://h\tst/",
    "http://a.test:/x",
    "http://a.test./x",
    "mailto:x@y.test",
    "//a.test/x",
    "http:a.test",
    "http://%41.test/",
]


@pytest.mark.parametrize("url", ODD_URLS)
def test_url_parts_read_every_url_as_httpx_does(url: str) -> None:
    """The guard's reading of a URL (answered from its origin when the rest cannot matter)
    is httpx's reading of the whole URL: the same parts, or the same error."""
    from portwright.resources.ssrf._guard import url_parts

    def read(parse: object) -> object:
        try:
            return parse(url)  # type: ignore[operator]
        except Exception as exc:  # the error is what is compared
            return type(exc), str(exc)

    def by_httpx(text: str) -> tuple[str, str, bool, int | None]:
        parsed = httpx.URL(text)
        return parsed.scheme, parsed.host, bool(parsed.userinfo), parsed.port

    for _ in range(2):  # the second time from what was remembered
        assert read(url_parts) == read(by_httpx)


async def test_a_remembered_origin_refuses_as_the_first_reading_did(guard: UrlGuard) -> None:
    """Once an origin was read, its other URLs are still judged on their own: a private
    origin refuses every path, a control character after a good origin is refused, and a
    name re-pointed at loopback is refused on its next check."""
    for path in ("/", "/a", "/b?c=d", "#e"):
        with pytest.raises(UrlRefusedError, match="loopback"):
            await guard.check(f"http://127.0.0.1{path}")
    assert await guard.check("https://public.test/ok") == ["93.184.216.34"]
    with pytest.raises(UrlRefusedError, match="not a valid URL"):
        await guard.check("https://public.test/a\nb")
    table = {"moving.test": ["93.184.216.34"]}
    moving = UrlGuard(resolver=StaticResolver(table))
    assert await moving.check("http://moving.test/1") == ["93.184.216.34"]
    moving = UrlGuard(resolver=StaticResolver({"moving.test": ["127.0.0.1"]}))
    with pytest.raises(UrlRefusedError, match="loopback"):
        await moving.check("http://moving.test/2")
