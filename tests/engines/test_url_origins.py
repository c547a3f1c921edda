"""The readings of a URL's site that every fetch makes (the tier memory's site, robots.txt's
site, the scrape adapter's host) come from its origin alone, remembered per origin: each
is what `urlsplit` reads of the whole URL (the same answer or the same error), and a
batch's URLs of one origin read it once."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from portwright.adapters.scrape import _adapter
from portwright.engines import _politeness
from portwright.engines.ladder import _rungs
from portwright.resources.ssrf import url_origin
from tests.gateway.test_ssrf import ODD_URLS

URLS = [
    *ODD_URLS,
    "http://a.test\t/x",  # urlsplit drops tabs and newlines anywhere, the authority's too
    "http://a.\ntest/x?y",
    "ht\ttp://a.test/",
    " http://a.test/",  # urlsplit strips leading spaces (no origin here: read whole)
    "\x00http://a.test/",
    "http://a.test]/",
    "http://[v1.x]/",
    "http://[::1]x/",
    "http://\uff21.test/",  # NFKC: urlsplit checks the netloc
    "http://a\u2100b.test/",
    "HTTPS://A.Test:443/x",
    "http://a.test:0/",
    "http://a.test:80",
    "http://a.test?/b",
    "http://a.test#/b",
    "file:///etc/passwd",
    "x-y+z.w://a.test/",
]


def _site_by_urlsplit(url: str) -> str:  # `site_of` as it read the whole URL
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def _robots_by_urlsplit(url: str) -> str:  # `Politeness.allowed`'s site, as it was read
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _host_by_urlsplit(url: str) -> str | None:  # `host_of` as it read the whole URL
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{host}:{port}" if port is not None else host


def _read(parse: Callable[[str], object], url: str) -> object:
    try:
        return parse(url)
    except Exception as exc:  # the error is what is compared
        return type(exc), str(exc)


READINGS = [
    (_rungs.site_of, _site_by_urlsplit),
    (_politeness._site_of, _robots_by_urlsplit),
    (_adapter.host_of, _host_by_urlsplit),
]


@pytest.mark.parametrize("url", URLS)
def test_a_site_read_from_its_origin_is_urlsplits_reading(url: str) -> None:
    """The tier memory's site, robots.txt's site and the scrape adapter's host of each URL
    are what `urlsplit` reads of the whole URL, also when remembered (the second time)."""
    for ours, whole in READINGS:
        for _ in range(2):
            assert _read(ours, url) == _read(whole, url), (ours, url)


def test_an_origins_urls_read_it_once() -> None:
    """A hundred URLs of one origin are read from it once (the rest never parsed again)."""
    origin = "http://once.test:8080"
    caches = [_rungs.site_of, _politeness._site_of, _adapter.host_of]
    before = [cache.cache_info().misses for cache in caches]
    for n in range(100):
        url = f"{origin}/product/{n}?page={n}"
        assert url_origin(url) == origin
        assert _rungs.site_of(url) == origin
        assert _politeness._site_of(url) == origin
        assert _adapter.host_of(url) == "once.test:8080"
    assert [cache.cache_info().misses for cache in caches] == [b + 1 for b in before]
