"""A job's browser artifacts in the blob store: its session state and its one trace.

Keys live under the job's prefix (`tenant/job/`): `browser-state.json` carries
cookies and local storage from one browser step to the next (on any worker
sharing the blob store), and `trace.zip` is the job's Playwright trace, one
ordinal per browser step (see `_trace`). `on_new_trace(key, size)` is called
once, when the trace is first written, so that an evidence row can point at it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from portwright.engines.browser._evidence import Masker
from portwright.engines.browser._lease import StorageState
from portwright.engines.browser._trace import merge_trace
from portwright.store import BlobStore

__all__ = ["JobArtifacts"]


class JobArtifacts:
    """Blob I/O for one job's browser state and trace (blocking calls run in a thread)."""

    def __init__(
        self,
        blobs: BlobStore,
        prefix: str,
        *,
        on_new_trace: Callable[[str, int], None] | None = None,
    ) -> None:
        self.blobs = blobs
        self.prefix = prefix.rstrip("/")
        self.on_new_trace = on_new_trace

    @property
    def state_key(self) -> str:
        return f"{self.prefix}/browser-state.json"

    @property
    def trace_key(self) -> str:
        return f"{self.prefix}/trace.zip"

    def _get(self, key: str) -> bytes | None:
        try:
            return self.blobs.get(key)
        except KeyError:
            return None

    async def load_state(self) -> StorageState | None:
        raw = await asyncio.to_thread(self._get, self.state_key)
        if raw is None:
            return None
        try:
            state = json.loads(raw)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    async def save_state(self, state: StorageState) -> None:
        data = json.dumps(state).encode()
        await asyncio.to_thread(
            self.blobs.put, self.state_key, data, content_type="application/json"
        )

    async def append_trace(self, chunk: bytes, masker: Masker) -> str:
        """Merge one step's trace into the job's; returns the trace's blob key."""

        def merge() -> tuple[bool, int]:
            previous = self._get(self.trace_key)
            merged = merge_trace(previous, chunk, masker)
            self.blobs.put(self.trace_key, merged, content_type="application/zip")
            return previous is None, len(merged)

        created, size = await asyncio.to_thread(merge)
        if created and self.on_new_trace is not None:
            await asyncio.to_thread(self.on_new_trace, self.trace_key, size)
        return self.trace_key
