"""Results in S3 (a real S3-protocol server on loopback, moto): presigned result links;
with the server stopped, results are kept in the database (and still downloadable);
once it is back, the scheduled housekeeping job moves them there, once."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from portwright.observability import PROCESS  # noqa: E402
from portwright.orchestrator import HOUSEKEEPING_SCHEDULE  # noqa: E402
from portwright.results import Housekeeper  # noqa: E402
from portwright.testing import wait_until_sync  # noqa: E402
from tests.results.conftest import BIG_HTML, Stack  # noqa: E402

REGION, KEY_ID, SECRET = "us-east-1", "testing", "testing"


class S3Server:
    """A moto S3 server on one loopback port, which can be stopped and started again."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server: Any = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = moto_server.ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3Server]:
    """The server, and only the credentials the test passes (no host AWS settings)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _scrape_big(stack: Stack, client: httpx.Client) -> dict[str, Any]:
    job_id = client.post("/v1/scrape", json={"url": f"{stack.pages_url}/big"}).json()["id"]
    wait_until_sync(
        lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded", timeout=120
    )
    job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    return job


def test_results_are_kept_in_the_database_while_s3_is_down_and_moved_once_it_is_back(
    s3: S3Server, make_stack: Callable[..., Stack]
) -> None:
    """Up: a presigned link. Down: the job still succeeds, its page held in the database
    behind the gateway's link. Back: one scheduled run moves it (once), and its link is
    presigned again."""
    bucket = f"pw-{secrets.token_hex(4)}"
    boto3.session.Session().client(
        "s3",
        endpoint_url=s3.url,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    ).create_bucket(Bucket=bucket)
    stack = make_stack(
        blob_url=f"s3://{bucket}/results",
        s3_endpoint_url=s3.url,
        s3_region=REGION,
        s3_access_key_id=KEY_ID,
        s3_secret_access_key=SecretStr(SECRET),
    )
    store, blobs = stack.service.store, stack.service.rt.blobs
    client, _ = stack.tenant()

    up = _scrape_big(stack, client)["output"]["results"]["html"]
    assert up["result_url"].startswith(f"{s3.url}/{bucket}/results/")  # presigned by S3
    assert httpx.get(up["result_url"]).content == BIG_HTML.encode()

    s3.stop()
    down_job = _scrape_big(stack, client)
    down = down_job["output"]["results"]["html"]
    assert store.held.count() == 1
    assert down["result_url"].startswith("/v1/results/")  # the gateway serves it meanwhile
    assert httpx.get(f"{stack.base_url}{down['result_url']}").content == BIG_HTML.encode()
    keeper = Housekeeper(store, blobs, stack.settings.retention)
    assert keeper.move_held() == 0  # still down: nothing moves, nothing is lost
    assert store.held.count() == 1

    moved_before = PROCESS.blobs_moved._value.get()
    s3.start()
    stack.service.rt.trigger_schedule(HOUSEKEEPING_SCHEDULE)
    wait_until_sync(lambda: store.held.count() == 0, timeout=60)
    assert PROCESS.blobs_moved._value.get() == moved_before + 1
    held_key = store.held.locate(down["evidence_id"])
    assert held_key is not None
    assert held_key.data is None
    assert blobs.get(held_key.blob_key) == BIG_HTML.encode()
    assert keeper.move_held() == 0  # moved once: nothing left to move
    again = client.get(f"/v1/jobs/{down_job['id']}").json()["output"]["results"]["html"]
    assert again["result_url"].startswith(f"{s3.url}/{bucket}/results/")
    assert httpx.get(again["result_url"]).content == BIG_HTML.encode()
