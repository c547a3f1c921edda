"""The sandbox forward proxies: identities, loopback-only relaying, auth, and bans."""

from __future__ import annotations

import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portwright.sandbox import (
    SandboxWorld,
    ServiceContext,
    ServiceSpec,
    consulate,
    identity_of_scope,
)
from portwright.sandbox.proxies import ProxyDef, proxy_catalog, proxy_spec, specs


def _whoami(ctx: ServiceContext) -> Starlette:
    async def who(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "identity": identity_of_scope(request.scope),
                "country": request.headers.get("x-sandbox-proxy-country"),
                "body": (await request.body()).decode(),
            }
        )

    return Starlette(routes=[Route("/who", who, methods=["GET", "POST"])])


def _world() -> SandboxWorld:
    proxies = specs(
        (ProxyDef("proxy-dc-1", "datacenter", "US"), ProxyDef("proxy-res-1", "residential", "GB"))
    )
    return SandboxWorld([ServiceSpec("site", _whoami), *proxies], seed=2)


def test_a_proxied_request_carries_the_proxys_identity_not_the_clients() -> None:
    """The portal sees the proxy's name and country; a client-sent identity header is dropped."""
    with _world() as world:
        target = world.url("site") + "/who"
        with httpx.Client(proxy=world.url("proxy-res-1")) as client:
            seen = client.post(
                target, content="payload", headers={"x-sandbox-proxy-identity": "spoofed"}
            ).json()
        assert seen == {"identity": "proxy-res-1", "country": "GB", "body": "payload"}
        assert httpx.get(target).json()["identity"] == "direct"
        entries = world.ledger("proxy-res-1").entries("request")
        assert [(e.actor, e.data["method"]) for e in entries] == [("proxy-res-1", "POST")]


def test_a_connect_tunnel_reaches_loopback_from_the_proxys_own_address() -> None:
    """CONNECT opens a raw tunnel; the portal sees the proxy's source address."""
    with _world() as world:
        port = int(world.url("site").rsplit(":", 1)[1])
        source_ip = next(p for p in proxy_catalog(world) if p["name"] == "proxy-dc-1")["source_ip"]
        proxy_host, proxy_port = world.url("proxy-dc-1").removeprefix("http://").split(":")
        with socket.create_connection((proxy_host, int(proxy_port)), timeout=5) as sock:
            sock.sendall(
                f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
            )
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert f'"identity":"ip:{source_ip}"'.encode() in answer


def test_the_proxy_refuses_non_loopback_targets() -> None:
    """Absolute-form and CONNECT requests to a non-loopback host get 403 from the proxy itself."""
    with _world() as world, httpx.Client(proxy=world.url("proxy-dc-1")) as client:
        refused = client.get("http://portal.example.com/")
        assert refused.status_code == 403
        assert refused.headers["x-sandbox-proxy-error"] == "403"
        with pytest.raises(httpx.ProxyError, match="403"):
            client.get("https://10.1.2.3/")


def test_basic_proxy_auth_is_required_when_configured() -> None:
    """Without credentials the proxy answers 407; with them it relays."""
    spec = proxy_spec("proxy-auth", "residential", "DE", username="u", password="p")
    with SandboxWorld([ServiceSpec("site", _whoami), spec], seed=2) as world:
        proxy = world.url("proxy-auth")
        target = world.url("site") + "/who"
        with httpx.Client(proxy=proxy) as client:
            assert client.get(target).status_code == 407
        authed = proxy.replace("http://", "http://u:p@")
        with httpx.Client(proxy=authed) as client:
            assert client.get(target).json()["identity"] == "proxy-auth"
        assert proxy_catalog(world)[0]["username"] == "u"


def test_a_banned_identity_gets_403_from_the_portal_and_others_pass() -> None:
    """A banned identity gets the consulate's 403 block page; another proxy and direct pass."""
    proxies = specs(
        (ProxyDef("proxy-dc-1", "datacenter", "US"), ProxyDef("proxy-res-1", "residential", "GB"))
    )
    with SandboxWorld([*consulate.specs(), *proxies], seed=2) as world:
        r = httpx.patch(
            f"{world.admin_url}/services/consulate/chaos",
            json={"banned_identities": ["proxy-dc-1"]},
        )
        assert r.json()["banned"] == ["proxy-dc-1"]
        login = world.url("consulate") + "/login"
        with httpx.Client(proxy=world.url("proxy-dc-1")) as banned:
            blocked = banned.get(login)
        assert blocked.status_code == 403
        assert 'id="blocked"' in blocked.text
        with httpx.Client(proxy=world.url("proxy-res-1")) as other:
            assert other.get(login).status_code == 200
        assert httpx.get(login).status_code == 200


def test_the_catalog_lists_every_proxy_with_tier_and_country() -> None:
    """proxy_catalog names each proxy service with its URL, tier and country."""
    with SandboxWorld(specs(), seed=1) as world:
        catalog = proxy_catalog(world)
        assert [(p["name"], p["tier"]) for p in catalog][:1] == [("proxy-dc-1", "datacenter")]
        assert {p["tier"] for p in catalog} == {"datacenter", "residential", "mobile"}
        assert len(catalog) == 9
        assert all(p["url"] == world.url(p["name"]) for p in catalog)
        assert len({p["source_ip"] for p in catalog}) == 9


def test_proxy_chaos_makes_the_proxy_itself_fail() -> None:
    """A proxy marked down answers 502 without reaching the portal."""
    with _world() as world:
        world.chaos("proxy-dc-1").update({"down": True})
        with httpx.Client(proxy=world.url("proxy-dc-1")) as client:
            assert client.get(world.url("site") + "/who").status_code == 502
        assert world.ledger("proxy-dc-1").entries() == []
