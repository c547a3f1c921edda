"""In-memory fakes for the seams (blob store, identity, secrets), for tests above those seams."""

from __future__ import annotations

import threading
from collections.abc import Sequence

__all__ = ["InMemoryBlobStore", "ListIdentity"]


class InMemoryBlobStore:
    """A BlobStore in a dict."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        with self._lock:
            self._blobs[key] = (bytes(data), content_type)

    def get(self, key: str) -> bytes:
        with self._lock:
            return self._blobs[key][0]

    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._blobs)


class ListIdentity:
    """An IdentityProvider over a fixed list of proxy URLs: rotation burns the current one."""

    def __init__(self, proxies: Sequence[str]) -> None:
        self._available = list(proxies)
        self._assigned: dict[str, str] = {}
        self.burned: list[str] = []
        self._lock = threading.Lock()

    def proxy_for(self, job_id: str, portal: str) -> str | None:
        with self._lock:
            if job_id not in self._assigned:
                if not self._available:
                    return None
                self._assigned[job_id] = self._available[len(self._assigned) % len(self._available)]
            return self._assigned[job_id]

    def rotate(self, job_id: str, portal: str, reason: str) -> bool:
        with self._lock:
            current = self._assigned.pop(job_id, None)
            if current is not None and current in self._available:
                self._available.remove(current)
                self.burned.append(current)
            if not self._available:
                return False
            self._assigned[job_id] = self._available[0]
            return True
