"""The S3 blob store against a real S3-protocol HTTP server on loopback (moto, in a thread)."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")
moto_auth = pytest.importorskip("moto.core.authorization")

from portwright.orchestrator import JobService  # noqa: E402
from portwright.sandbox import SandboxWorld  # noqa: E402
from portwright.sandbox.echo import echo_service  # noqa: E402
from portwright.settings import Settings  # noqa: E402
from portwright.store import (  # noqa: E402
    BlobStoreConfigError,
    LocalBlobStore,
    S3BlobStore,
    blob_store_from,
)
from portwright.testing import wait_until  # noqa: E402
from tests.orchestrator._support import registry  # noqa: E402
from tests.support import reaching  # noqa: E402

REGION = "us-east-1"
KEY_ID, SECRET = "testing", "testing"  # moto accepts any credentials unless IAM auth is on


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what the test passes reaches boto3: no host credentials, profiles or metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"pw-{secrets.token_hex(4)}"
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    client.create_bucket(Bucket=name)
    return name


def _s3_settings(base: Settings, endpoint: str, url: str, **extra: Any) -> Settings:
    update: dict[str, Any] = {
        "blob_url": url,
        "s3_endpoint_url": endpoint,
        "s3_region": REGION,
        "s3_access_key_id": KEY_ID,
        "s3_secret_access_key": SECRET,
        **extra,
    }
    return Settings(**{**base.model_dump(), **update})


@pytest.fixture
def base(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(base: Settings, endpoint: str, bucket: str) -> S3BlobStore:
    made = blob_store_from(_s3_settings(base, endpoint, f"s3://{bucket}/evidence/v1"))
    assert isinstance(made, S3BlobStore)
    return made


def test_put_get_round_trips_bytes_under_the_prefix(store: S3BlobStore) -> None:
    """Bytes come back identical, the object sits under the URL's prefix with its type."""
    payloads = {
        "t1/j1/step-1.html": b"<p class='v'>hello</p>",
        "t1/j1/trace.zip": bytes(range(256)) * 4096 + os.urandom(4096),  # ~1 MiB, all bytes
        "t1/j1/empty.txt": b"",
    }
    for key, data in payloads.items():
        store.put(key, data, content_type="application/zip")
    for key, data in payloads.items():
        assert store.get(key) == data
    head = store.client.head_object(Bucket=store.bucket, Key="evidence/v1/t1/j1/step-1.html")
    assert head["ContentType"] == "application/zip"
    store.put("t1/j1/step-1.html", b"second", content_type="text/html")
    assert store.get("t1/j1/step-1.html") == b"second"


def test_a_missing_key_and_an_escaping_key_behave_like_the_local_store(
    store: S3BlobStore, tmp_path: Path
) -> None:
    """KeyError(key) for a missing blob, ValueError for a key leaving the store: both stores."""
    local = LocalBlobStore(tmp_path / "blobs")
    for blobs in (local, store):
        with pytest.raises(KeyError) as missing:
            blobs.get("t1/nope/step-1.html")
        assert missing.value.args == ("t1/nope/step-1.html",)
        for bad in ("../outside.txt", "t1/../../outside.txt"):
            with pytest.raises(ValueError, match="escapes the store"):
                blobs.put(bad, b"x", content_type="text/plain")
        blobs.put("a/../b.txt", b"same key", content_type="text/plain")
        assert blobs.get("b.txt") == b"same key"


def test_the_default_stays_the_local_directory(base: Settings) -> None:
    made = blob_store_from(base)
    assert isinstance(made, LocalBlobStore)
    assert made.root == (base.data_dir / "blobs").resolve()


def test_a_missing_bucket_fails_at_startup_naming_the_setting(
    base: Settings, endpoint: str
) -> None:
    with pytest.raises(BlobStoreConfigError, match=r"does not exist \(PORTWRIGHT_BLOB_URL="):
        blob_store_from(_s3_settings(base, endpoint, "s3://no-such-bucket/x"))


def test_refused_credentials_fail_at_startup_naming_the_settings(
    base: Settings, endpoint: str, bucket: str
) -> None:
    with (
        moto_auth.enable_iam_authentication(),
        pytest.raises(BlobStoreConfigError, match="PORTWRIGHT_S3_ACCESS_KEY_ID") as refused,
    ):
        blob_store_from(_s3_settings(base, endpoint, f"s3://{bucket}"))
    assert "refused the credentials" in str(refused.value)
    assert SECRET not in str(refused.value).replace("PORTWRIGHT_S3_SECRET", "")


def test_no_credentials_and_no_server_fail_naming_the_settings(
    base: Settings, endpoint: str, bucket: str
) -> None:
    bare = _s3_settings(
        base, endpoint, f"s3://{bucket}", s3_access_key_id=None, s3_secret_access_key=None
    )
    with pytest.raises(BlobStoreConfigError, match="PORTWRIGHT_S3_ACCESS_KEY_ID"):
        blob_store_from(bare)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(BlobStoreConfigError, match="PORTWRIGHT_S3_ENDPOINT_URL"):
        blob_store_from(_s3_settings(base, closed, f"s3://{bucket}"))
    with pytest.raises(BlobStoreConfigError, match="PORTWRIGHT_BLOB_URL"):
        blob_store_from(_s3_settings(base, endpoint, "gs://elsewhere"))


def test_s3_without_boto3_installed_is_a_clear_error(
    base: Settings, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` now raises ImportError
    with pytest.raises(BlobStoreConfigError, match=r"boto3 is not installed.*portwright\[s3\]"):
        blob_store_from(_s3_settings(base, endpoint, "s3://any-bucket"))


# -- end to end: a job's evidence, written through the runtime, lands in the bucket ----------


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only (overrides conftest's SQLite + PostgreSQL pair): this is about blobs."""
    return f"sqlite:///{tmp_path / 'app.sqlite'}"


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld([echo_service("echo")], seed=5) as w:
        yield w


@pytest.fixture
def settings(settings: Settings, world: SandboxWorld) -> Settings:
    """The jobs may reach this module's sandbox: its ports are on the SSRF allowlist."""
    return reaching(settings, world)


async def test_a_jobs_evidence_lands_in_the_bucket(
    service_for: Callable[..., JobService],
    settings: Settings,
    world: SandboxWorld,
    endpoint: str,
    bucket: str,
) -> None:
    """The page-change job parks with its HTML evidence: stored in S3, not in data_dir."""
    world.context("echo").options["markup_class"] = "value-v2"
    svc = service_for(registry(), settings=_s3_settings(settings, endpoint, f"s3://{bucket}/pw"))
    blobs = svc.rt.blobs
    assert isinstance(blobs, S3BlobStore)
    tenant = svc.store.tenants.ensure("acme")
    job = await svc.submit(
        tenant_id=tenant.id, adapter="echo", input={"url": world.url("echo"), "key": "dom"}
    )

    async def parked() -> Any:
        return (await svc.get(job.id)).state == "OPERATOR_ACTION_REQUIRED"

    await wait_until(parked, timeout=15)
    [evidence] = svc.store.jobs.evidence(job.id)
    assert evidence.kind == "html"
    assert evidence.blob_key.startswith(f"{tenant.id}/{job.id}/")
    listed = blobs.client.list_objects_v2(Bucket=bucket, Prefix="pw/")
    assert [o["Key"] for o in listed["Contents"]] == [f"pw/{evidence.blob_key}"]
    body = blobs.get(evidence.blob_key)
    assert b'class="value-v2"' in body
    assert len(body) == evidence.size
    assert not (settings.data_dir / "blobs").exists()
