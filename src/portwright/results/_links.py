"""Signed, time-limited links to stored results.

A result kept in the local blob store (or still held in the database) is served by the
gateway at `/v1/results/{evidence_id}?expires=…&signature=…`: HMAC-SHA256 over the id and
the expiry, keyed by a key derived from the master key, so every gateway and worker of
one install signs and checks alike. A result in an S3 bucket gets S3's own presigned URL.
The clock is injected (`clock`), so expiry is testable without waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from portwright.store import BlobStore, S3BlobStore

__all__ = ["LINK_PATH", "LinkError", "ResultLink", "ResultLinks"]

LINK_PATH = "/v1/results"
_PURPOSE = b"portwright result links v1"


class LinkError(ValueError):
    """A result link that is not valid (any more); the message says why."""


@dataclass(frozen=True, slots=True)
class ResultLink:
    url: str
    expires_at: float


class ResultLinks:
    def __init__(
        self,
        key: bytes,
        *,
        blobs: BlobStore | None = None,
        base_url: str | None = None,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < 16:
            raise ValueError("a result link key needs at least 16 bytes")
        self._key = hmac.new(key, _PURPOSE, hashlib.sha256).digest()
        self.blobs = blobs
        self.base_url = (base_url or "").rstrip("/")
        self.ttl_s = ttl_s
        self.clock = clock

    def _sign(self, evidence_id: str, expires: int) -> str:
        message = f"{evidence_id}.{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def link(self, evidence_id: str, blob_key: str, *, presign: bool = True) -> ResultLink:
        """A link to one stored result, valid for `ttl_s` from now: S3's presigned URL when
        the bytes are in a bucket (and `presign`), else the gateway's signed one (which
        serves them wherever they are: the bucket, or the database while held there)."""
        now = self.clock()
        if isinstance(self.blobs, S3BlobStore) and presign:
            ttl = max(1, math.ceil(self.ttl_s))
            return ResultLink(self.blobs.presign(blob_key, ttl), now + ttl)
        expires = math.ceil(now + self.ttl_s)
        signature = self._sign(evidence_id, expires)
        path = f"{LINK_PATH}/{evidence_id}?expires={expires}&signature={signature}"
        return ResultLink(f"{self.base_url}{path}", float(expires))

    def verify(self, evidence_id: str, expires: str, signature: str) -> None:
        """Raise LinkError unless the link was signed here and has not expired."""
        if not expires.isdigit() or len(expires) > 12:
            raise LinkError("expires: not a time in seconds")
        expected = self._sign(evidence_id, int(expires))
        if not hmac.compare_digest(expected, signature):
            raise LinkError("signature: does not match this link")
        if int(expires) <= self.clock():
            raise LinkError("expires: the link has expired; ask for the job again for a new one")
