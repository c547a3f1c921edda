"""Scrape results: small ones inline, large ones stored behind a signed, expiring
`result_url` that downloads the stored body (expiry checked on an injected clock)."""

from __future__ import annotations

import httpx

from portwright.testing import wait_until_sync
from tests.results.conftest import BIG_HTML, Stack


def _finished(client: httpx.Client, job_id: str) -> dict[str, object]:
    def done() -> bool:
        return client.get(f"/v1/jobs/{job_id}").json()["status"] in ("succeeded", "failed")

    wait_until_sync(done, timeout=60)
    job: dict[str, object] = client.get(f"/v1/jobs/{job_id}").json()
    return job


def test_a_small_page_is_inline_and_a_large_one_is_behind_a_result_url(stack: Stack) -> None:
    """The small page's body is in the output; the large one is stored, and its
    result_url (no API key needed) downloads exactly the page."""
    client, _ = stack.tenant()
    small = client.post("/v1/scrape", json={"url": f"{stack.pages_url}/page/1"}).json()
    big = client.post("/v1/scrape", json={"url": f"{stack.pages_url}/big"}).json()
    small_out = _finished(client, small["id"])["output"]
    assert isinstance(small_out, dict)
    assert "Item 1" in small_out["html"]
    assert "results" not in small_out
    big_out = _finished(client, big["id"])["output"]
    assert isinstance(big_out, dict)
    assert big_out["html"] is None
    stored = big_out["results"]["html"]
    assert stored["bytes"] == len(BIG_HTML.encode())
    assert big_out["result_url"] == stored["result_url"]
    download = httpx.get(f"{stack.base_url}{stored['result_url']}")
    assert download.status_code == 200
    assert download.content == BIG_HTML.encode()
    assert download.headers["content-type"].startswith("text/html")


def test_a_result_url_expires_and_a_forged_one_is_refused(stack: Stack) -> None:
    """Past its time-to-live (on the links' injected clock) the link is 410; a changed
    signature or another result's id under the same signature is 403."""
    client, _ = stack.tenant()
    big = client.post("/v1/scrape", json={"url": f"{stack.pages_url}/big"}).json()
    url = _finished(client, big["id"])["output"]["results"]["html"]["result_url"]  # type: ignore[index]
    links = stack.service.rt.links
    assert links is not None
    real_clock = links.clock
    base = real_clock()
    try:
        links.clock = lambda: base + stack.settings.result_link_ttl_s - 5
        assert httpx.get(f"{stack.base_url}{url}").status_code == 200
        links.clock = lambda: base + stack.settings.result_link_ttl_s + 5
        expired = httpx.get(f"{stack.base_url}{url}")
        assert expired.status_code == 410
        assert "expires" in expired.json()["message"]
    finally:
        links.clock = real_clock
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert httpx.get(f"{stack.base_url}{forged}").status_code == 403
    other = url.replace("/v1/results/", "/v1/results/evd_other", 1)
    assert httpx.get(f"{stack.base_url}{other}").status_code == 403
