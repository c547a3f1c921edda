"""Blob storage for evidence (HTML, screenshots, traces).

A local directory by default; an S3-compatible bucket when `PORTWRIGHT_BLOB_URL`
is `s3://bucket/prefix` (needs the `s3` extra: `pip install portwright[s3]`).
`blob_store_from(settings)` picks one, and checks a bucket at startup. Every
call is blocking: callers on an event loop run them in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import importlib
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from portwright.settings import Settings

__all__ = [
    "BlobStore",
    "BlobStoreConfigError",
    "LocalBlobStore",
    "S3BlobStore",
    "blob_store_from",
]


class BlobStore(Protocol):
    """Where evidence bytes live. Keys are relative paths like `tenant/job/step-1.html`."""

    def put(self, key: str, data: bytes, *, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None:
        """Remove the blob (nothing if it is not there)."""
        ...


class BlobStoreConfigError(RuntimeError):
    """The configured blob store cannot be used; the message names the setting to fix."""


class LocalBlobStore:
    """Blobs as files under a root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


_MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
_MISSING_BUCKET = frozenset({"NoSuchBucket", "404", "NotFound"})
_DENIED = frozenset(
    {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
)
_CREDENTIAL_SETTINGS = "PORTWRIGHT_S3_ACCESS_KEY_ID / PORTWRIGHT_S3_SECRET_ACCESS_KEY"


def _import(module: str) -> Any:
    """boto3 and botocore ship no types: everything from them is `Any`, here and only here."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BlobStoreConfigError(
            "PORTWRIGHT_BLOB_URL asks for S3 but boto3 is not installed: "
            "pip install 'portwright[s3]'"
        ) from exc


def _error_code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """Blobs as objects in an S3-compatible bucket, under `prefix`, with the local store's keys.

    `client` is a boto3 S3 client (thread-safe, shared by every thread of the process).
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        if not bucket:
            raise BlobStoreConfigError("PORTWRIGHT_BLOB_URL names no bucket (s3://bucket/prefix)")
        self.client: Any = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._errors: Any = _import("botocore.exceptions")

    @classmethod
    def connect(
        cls,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> S3BlobStore:
        """A store over a new client; credentials default to boto3's own chain when unset."""
        boto3 = _import("boto3")
        config = _import("botocore.config").Config(
            signature_version="s3v4",
            # S3-compatible servers (MinIO, Ceph, moto…) behind an endpoint URL want paths.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        try:
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url or None,
                region_name=region or None,
                aws_access_key_id=access_key_id or None,
                aws_secret_access_key=secret_access_key or None,
                config=config,
            )
        except ValueError as exc:  # botocore: "Invalid endpoint", a malformed region
            raise BlobStoreConfigError(
                f"bad S3 client settings (PORTWRIGHT_S3_ENDPOINT_URL={endpoint_url!r}, "
                f"PORTWRIGHT_S3_REGION={region!r}): {exc}"
            ) from exc
        return cls(client, bucket, prefix)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        # The local store's rule: a key is a relative path that stays inside the store.
        norm = posixpath.normpath(key)
        if not key or key.startswith("/") or norm in (".", "..") or norm.startswith("../"):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return f"{self.prefix}/{norm}" if self.prefix else norm

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=bytes(data), ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self._errors.ClientError as exc:
            if _error_code(exc) in _MISSING_KEY:
                raise KeyError(key) from None
            raise
        body = response["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def presign(self, key: str, expires_s: int) -> str:
        """A GET URL for the blob, valid `expires_s` seconds (S3's own signature)."""
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=max(1, int(expires_s)),
            )
        )

    def check(self) -> None:
        """Fail now, naming the setting, if the bucket is missing or refuses us."""
        errors = self._errors
        where = f"PORTWRIGHT_BLOB_URL={self.url}"
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except errors.ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING_BUCKET:
                raise BlobStoreConfigError(
                    f"S3 bucket {self.bucket!r} does not exist ({where}); create it first"
                ) from exc
            if code in _DENIED:
                raise BlobStoreConfigError(
                    f"S3 refused the credentials for bucket {self.bucket!r} ({where}): "
                    f"check {_CREDENTIAL_SETTINGS}"
                ) from exc
            raise BlobStoreConfigError(
                f"S3 bucket {self.bucket!r} unusable ({where}): {exc}"
            ) from exc
        except errors.NoCredentialsError as exc:
            raise BlobStoreConfigError(
                f"no S3 credentials for {where}: set {_CREDENTIAL_SETTINGS} "
                "(or boto3's own AWS_* variables)"
            ) from exc
        except errors.EndpointConnectionError as exc:
            raise BlobStoreConfigError(
                f"cannot reach S3 for {where}: check PORTWRIGHT_S3_ENDPOINT_URL ({exc})"
            ) from exc
        except errors.BotoCoreError as exc:
            raise BlobStoreConfigError(f"S3 unusable for {where}: {exc}") from exc


def blob_store_from(settings: Settings) -> BlobStore:
    """The blob store the settings ask for: `PORTWRIGHT_BLOB_URL`, else `data_dir/blobs`."""
    url = settings.blob_url
    if not url:
        return LocalBlobStore(settings.data_dir / "blobs")
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalBlobStore(Path(parts.path))
    if parts.scheme != "s3":
        raise BlobStoreConfigError(
            f"PORTWRIGHT_BLOB_URL={url!r}: expected s3://bucket/prefix or file:///path"
        )
    secret = settings.s3_secret_access_key
    store = S3BlobStore.connect(
        parts.netloc,
        parts.path,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
    )
    store.check()
    return store
