"""A job's browser artifacts in the blob store: its session state and its one trace.

Keys live under the job's prefix (`tenant/job/`): `browser-state.json` carries
cookies and local storage from one browser step to the next (on any worker
sharing the blob store) — sealed under the tenant's key when the runtime has a
`BlobSealer` (the vault), since it holds live sessions — and `trace.zip` is the
job's Playwright trace, one
ordinal per browser step (see `_trace`). `on_new_trace(key, size)` is called
once, when the trace is first written, so that an evidence row can point at it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import structlog

from portwright.engines.browser._evidence import Masker
from portwright.engines.browser._lease import StorageState
from portwright.engines.browser._trace import merge_trace
from portwright.resources import BlobSealer
from portwright.store import BlobStore

__all__ = ["JobArtifacts"]

log = structlog.get_logger("portwright.browser")


class JobArtifacts:
    """Blob I/O for one job's browser state and trace (blocking calls run in a thread)."""

    def __init__(
        self,
        blobs: BlobStore,
        prefix: str,
        *,
        on_new_trace: Callable[[str, int], None] | None = None,
        sealer: BlobSealer | None = None,
    ) -> None:
        self.blobs = blobs
        self.prefix = prefix.rstrip("/")
        self.on_new_trace = on_new_trace
        self.sealer = sealer
        self.tenant_id = self.prefix.split("/", 1)[0]  # the prefix is `tenant/job`

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
        """The state the last step saved; None if there is none or it cannot be read (the
        step then starts a fresh session rather than fail)."""
        raw = await asyncio.to_thread(self._get, self.state_key)
        if raw is None:
            return None
        if self.sealer is not None and not raw.lstrip().startswith(b"{"):
            try:
                raw = await asyncio.to_thread(
                    self.sealer.open_blob, self.tenant_id, raw, context=self.state_key
                )
            except Exception as exc:  # noqa: BLE001 - a lost session, not a failed job
                log.warning("browser state does not open; starting fresh", error=str(exc))
                return None
        try:
            state = json.loads(raw)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    async def save_state(self, state: StorageState) -> None:
        data = json.dumps(state).encode()
        kind = "application/json"
        if self.sealer is not None:
            data = await asyncio.to_thread(
                self.sealer.seal_blob, self.tenant_id, data, context=self.state_key
            )
            kind = "application/octet-stream"
        await asyncio.to_thread(self.blobs.put, self.state_key, data, content_type=kind)

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
