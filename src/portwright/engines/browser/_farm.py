"""The sandbox browser service: local Chromium instances handed out as CDP URLs.

It stands in for a hosted browser provider in tests and demos: `acquire()`
starts a headless Chromium with remote debugging on a free loopback port and
returns its `ws://` URL; `release(url)` stops it and removes its profile.
Use it through `RemoteCdp(farm.acquire, release=farm.release)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from portwright.engines._chromium import CHROMIUM_ARGS, find_chromium

__all__ = ["ChromiumFarm"]


@dataclass
class _Instance:
    process: asyncio.subprocess.Process
    profile: Path


class ChromiumFarm:
    """Starts and stops local Chromium instances reachable over CDP. An async context manager."""

    def __init__(
        self, executable: str | Path | None = None, *, start_timeout_s: float = 20.0
    ) -> None:
        self.executable = find_chromium(executable)
        self.start_timeout_s = start_timeout_s
        self._instances: dict[str, _Instance] = {}

    async def __aenter__(self) -> ChromiumFarm:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def urls(self) -> list[str]:
        return list(self._instances)

    def pid_of(self, url: str) -> int:
        return self._instances[url].process.pid

    async def acquire(self) -> str:
        """Start one Chromium; its CDP URL once it listens."""
        profile = Path(tempfile.mkdtemp(prefix="portwright-farm-"))
        process = await asyncio.create_subprocess_exec(
            self.executable,
            "--headless",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            *CHROMIUM_ARGS,
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        instance = _Instance(process, profile)
        try:
            url = await self._wait_for_port(instance)
        except BaseException:
            await self._stop(instance)
            raise
        self._instances[url] = instance
        return url

    async def release(self, url: str) -> None:
        """Stop the instance behind `url` (a no-op for an unknown URL)."""
        instance = self._instances.pop(url, None)
        if instance is not None:
            await self._stop(instance)

    async def aclose(self) -> None:
        for url in list(self._instances):
            await self.release(url)

    async def _wait_for_port(self, instance: _Instance) -> str:
        marker = instance.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if instance.process.returncode is not None:
                raise RuntimeError(f"chromium exited with {instance.process.returncode}")
            with contextlib.suppress(FileNotFoundError):
                lines = marker.read_text().splitlines()
                if len(lines) >= 2 and lines[0].strip().isdigit():
                    return f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
            await asyncio.sleep(0.05)
        raise TimeoutError(f"chromium did not open its CDP port within {self.start_timeout_s}s")

    async def _stop(self, instance: _Instance) -> None:
        process = instance.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await asyncio.to_thread(shutil.rmtree, instance.profile, True)
