"""The HTTP rungs' GETs set their options without curl_cffi's general request builder
(`_curl.lean_get`): every curl option and impersonation call, in order, is the one
curl_cffi's own `AsyncSession.request` makes, on both rungs, with and without a cookie and
a pin; errors are curl_cffi's; any other request shape goes through curl_cffi's own path."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from curl_cffi import CurlHttpVersion
from curl_cffi.requests import exceptions as curl_errors

from portwright.engines.ladder import _curl as lean_module
from portwright.engines.ladder import _http
from portwright.engines.ladder._http import _PIN, _pinning_session

from .test_lean_response import RawSite


@pytest.fixture
def site() -> Iterator[RawSite]:
    raw = RawSite()
    try:
        yield raw
    finally:
        raw.close()


def _recording(calls: list[tuple[Any, ...]]) -> type:
    """The rungs' session whose handles note each option set and each impersonation."""

    class Recording(_pinning_session()):  # type: ignore[misc]
        async def pop_curl(self) -> Any:
            curl = await super().pop_curl()
            base = type(curl)

            class Noting(base):  # type: ignore[misc, valid-type]
                def setopt(self, option: Any, value: Any) -> int:
                    calls.append(("setopt", int(option), _plain(value)))
                    return int(super().setopt(option, value))

                def impersonate(self, *args: Any, **kwargs: Any) -> int:
                    calls.append(("impersonate", args, tuple(sorted(kwargs.items()))))
                    return int(super().impersonate(*args, **kwargs))

            curl.__class__ = Noting
            return curl

        def release_curl(self, curl: Any) -> None:
            calls.append(("release",))
            curl.__class__ = type(curl).__mro__[1]
            super().release_curl(curl)

    return Recording


def _plain(value: Any) -> Any:
    """An option's value, comparable: buffers by type, lists as tuples."""
    if isinstance(value, list):
        return tuple(value)
    if hasattr(value, "getvalue"):
        return type(value).__name__
    return value


def _options(impersonate: str | None) -> dict[str, Any]:
    """The options `CurlFetcher._client` gives a session, for each rung."""
    options: dict[str, Any] = {"proxy": None, "trust_env": False, "allow_redirects": False}
    if impersonate:
        return options | {"impersonate": impersonate, "http_version": CurlHttpVersion.V2TLS}
    return options | {"headers": {"user-agent": "Portwright/1"}, "http_version": "v1"}


REQUESTS: list[dict[str, Any]] = [
    {"headers": None},
    {"headers": {"cookie": "sid=abc; pref=x"}},
    {"headers": None, "pin": True},
    {"headers": {"cookie": "a=1"}, "pin": True, "timeout": 2.5},
]


async def _send_all(site: RawSite, impersonate: str | None) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    session = _recording(calls)(**_options(impersonate))
    try:
        for spec in REQUESTS:
            pin = [f"pinned.test:{site.port}:127.0.0.1"] if spec.get("pin") else None
            url = f"http://pinned.test:{site.port}/latin" if pin else site.url("/bare?q=a b")
            token = _PIN.set(pin)
            try:
                response = await session.request(
                    "GET",
                    url,
                    data=None,
                    headers=spec["headers"],
                    timeout=spec.get("timeout", 10.0),
                    discard_cookies=True,
                )
            finally:
                _PIN.reset(token)
            calls.append(("answer", response.status_code, response.content))
    finally:
        await session.close()
    return calls


@pytest.mark.parametrize("ca_from_env", [True, False])
@pytest.mark.parametrize("impersonate", [None, "chrome"])
async def test_lean_gets_set_what_curl_cffi_sets(
    site: RawSite, impersonate: str | None, ca_from_env: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Option by option, in order, the lean GET sets what curl_cffi's request sets (so the
    same bytes go on the wire), and the answers are the same; with a CA bundle named by
    the environment (curl_cffi reads REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) and without."""
    if ca_from_env:
        monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    else:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    used: list[str] = []
    lean_get = lean_module.lean_get

    async def spy(session: Any, plan: Any, url: str, *args: Any) -> Any:
        used.append(url)
        return await lean_get(session, plan, url, *args)

    monkeypatch.setattr(lean_module, "lean_get", spy)
    lean = await _send_all(site, impersonate)
    assert len(used) == len(REQUESTS)  # every one of them went the lean way
    monkeypatch.setattr(lean_module, "lean_class", lambda: None)  # curl_cffi's own path
    own = await _send_all(site, impersonate)
    assert len(used) == len(REQUESTS)
    assert lean == own
    assert [c[1] for c in lean if c[0] == "answer"] == [200, 200, 200, 200]
    assert any(c[0] == "impersonate" for c in lean) == bool(impersonate)


async def test_a_refused_connection_fails_as_with_curl_cffi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection the lean GET cannot make raises curl_cffi's error class and message,
    and hands its handle back to the pool."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/"

    async def fail() -> tuple[type, str, int]:
        session = _pinning_session()(**_options(None))
        try:
            with pytest.raises(curl_errors.RequestException) as caught:
                await session.request(
                    "GET", url, data=None, headers=None, timeout=5.0, discard_cookies=True
                )
            assert session.pool.qsize() == session.max_clients  # the handle came back
            # curl's message says how long the attempt took ("after 0 ms"): not compared
            message = re.sub(r" after \d+ ms", "", str(caught.value).split(" See ")[0])
            return type(caught.value), message, caught.value.code
        finally:
            await session.close()

    lean = await fail()
    monkeypatch.setattr(lean_module, "lean_class", lambda: None)
    assert lean == await fail()
    assert issubclass(lean[0], curl_errors.ConnectionError)


@pytest.mark.parametrize(
    ("method", "kwargs", "options"),
    [
        ("POST", {"data": {"a": "1"}}, {}),  # a captcha form's answer
        ("GET", {"headers": {"cookie": "a=1", "x-other": "1"}}, {}),
        ("GET", {"headers": {"cookie": ""}}, {}),
        ("GET", {"timeout": None}, {}),
        ("GET", {"params": {"a": "1"}}, {}),
        ("GET", {}, {"proxy": "http://127.0.0.1:9"}),
        ("GET", {}, {"trust_env": True}),
        ("GET", {}, {"allow_redirects": True}),
        ("GET", {}, {"verify": False}),
    ],
)
async def test_other_requests_take_curl_cffis_own_path(
    site: RawSite,
    method: str,
    kwargs: dict[str, Any],
    options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request or session the lean GET does not reproduce goes through curl_cffi."""
    used: list[str] = []
    monkeypatch.setattr(lean_module, "lean_get", lambda *a: used.append("lean"))
    session = _pinning_session()(**(_options(None) | options))
    call = {"data": None, "headers": None, "timeout": 5.0, "discard_cookies": True} | kwargs
    try:
        # the unreachable proxy fails: what matters is which path sent the request
        with contextlib.suppress(curl_errors.RequestException):
            await session.request(method, site.url("/bare"), **call)
    finally:
        await session.close()
    assert used == []


def test_the_http_rungs_sessions_fit_the_lean_get() -> None:
    """Both rungs' sessions (as `CurlFetcher` builds them) take the lean GET."""
    for impersonate in (None, "chrome"):
        client = _http.CurlFetcher(impersonate=impersonate)._client(None)
        assert lean_module.lean_plan(client) is not None


def test_urls_are_requoted_as_curl_cffi_requotes_them() -> None:
    """The URL a lean GET sets is curl_cffi's `requote_uri` of it, whether the shortcut
    answers (a URL it would give back unchanged) or it is requoted: URLs made of every
    safe, reserved, percent-escaped, unsafe and non-ASCII piece, seeded."""
    import random

    from curl_cffi.requests.utils import requote_uri

    pieces = [
        *"aZ09_.-~!#$&'()*+,/:;=?@[]|",
        *' "<>\\^`{}\t\x7f',
        "%41",
        "%7e",
        "%2F",
        "%zz",
        "%",
        "%4",
        "\u00e9",
        "\u2603",
        "\U0001f600",
        "http://h:8080/p",
    ]
    rng = random.Random(14)
    urls = [
        "http://127.0.0.1:8000/static/products/1?ref=x&y=1#top",
        "https://example.test/a%20b",
        "https://example.test/caf\u00e9",
        "https://example.test/a b",
        "",
    ]
    urls += ["".join(rng.choices(pieces, k=rng.randint(1, 12))) for _ in range(4000)]
    unchanged = 0
    for url in urls:
        assert lean_module.requoted(url, requote_uri) == requote_uri(url), url
        unchanged += lean_module.requoted(url, lambda u: "") == url and url != ""
    assert unchanged > 100  # the shortcut did answer
