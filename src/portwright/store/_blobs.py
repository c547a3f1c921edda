"""Blob storage for evidence (HTML, screenshots, traces). Local directory by default."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

__all__ = ["BlobStore", "LocalBlobStore"]


class BlobStore(Protocol):
    """Where evidence bytes live. Keys are relative paths like `tenant/job/step-1.html`."""

    def put(self, key: str, data: bytes, *, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...


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
