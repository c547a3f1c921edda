"""Driver tokens: a driver's app opens its own socket without the tenant's API key, and
nothing else; revoking them closes what they opened and refuses them from then on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.dispatch.conftest import Dispatch


def _socket(d: Dispatch, driver: str, token: str) -> str:
    return d.url.replace("http://", "ws://") + f"/v1/drivers/{driver}/ws?access_token={token}"


def _token(d: Dispatch, tenant: str, driver: str, **body: Any) -> str:
    issued = d.api(tenant, "POST", f"/v1/drivers/{driver}/token", json=body or None)
    assert issued.status_code == 201, issued.text
    token: str = issued.json()["token"]
    return token


async def _refused(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:  # closed before accept: HTTP 403
        async with connect(url):
            pass
    return refused.value.response.status_code


@pytest.mark.postgres
async def test_a_driver_token_opens_its_drivers_socket_and_nothing_else(
    dispatch: Dispatch,
) -> None:
    d = dispatch
    d.add_drivers("acme", "d1", "d2")
    token = _token(d, "acme", "d1", ttl_s=600)

    async with connect(_socket(d, "d1", token)) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert hello["type"] == "snapshot"

    assert await _refused(_socket(d, "d2", token)) == 403  # another driver of the tenant
    # The API does not take it for a key or an access token.
    listed = await asyncio.to_thread(
        httpx.get, f"{d.url}/v1/drivers", headers={"authorization": f"Bearer {token}"}
    )
    assert listed.status_code == 401
    # Another tenant cannot mint one for acme's driver; nor anyone for an unknown driver.
    assert d.api("globex", "POST", "/v1/drivers/d1/token").status_code == 404
    assert d.api("acme", "POST", "/v1/drivers/nobody/token").status_code == 404
    bad = d.api("acme", "POST", "/v1/drivers/d1/token", json={"ttl_s": 10})
    assert bad.status_code == 422
    assert "ttl_s" in bad.text
    # A tampered token (the subject's name swapped in the payload) is no token at all.
    head, payload, sig = token.split(".")
    assert await _refused(_socket(d, "d1", f"{head}.{payload[:-2]}AA.{sig}")) == 403


@pytest.mark.postgres
async def test_revoking_closes_the_open_socket_and_refuses_every_earlier_token(
    dispatch: Dispatch,
) -> None:
    d = dispatch
    d.add_drivers("acme", "d1")
    old = _token(d, "acme", "d1")
    async with connect(_socket(d, "d1", old)) as ws:
        await asyncio.wait_for(ws.recv(), 30)  # the snapshot
        revoked = await asyncio.to_thread(d.api, "acme", "DELETE", "/v1/drivers/d1/tokens")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["epoch"] == 1
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401

    assert await _refused(_socket(d, "d1", old)) == 403
    assert d.api("globex", "DELETE", "/v1/drivers/d1/tokens").status_code == 404
    fresh = _token(d, "acme", "d1")
    async with connect(_socket(d, "d1", fresh)) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "snapshot"
