"""Record a portal's HTTP answers once, replay them offline: a cassette file per test.

`Cassette(path, record=True).transport` forwards each request to the real server and
keeps the answer; `save()` writes them (JSON, one entry per request in order). With
`record=False` the same transport answers from the file and never connects: a request
the cassette does not hold raises `CassetteMissError` naming it. Requests match on method,
URL and a hash of the body; a request made several times gets its recorded answers in
order (the last one repeats). Pass the transport to `FakeStepContext(transport=...)`, or
use the pytest plugin `portwright.testing.cassettes` (its `cassette` fixture).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Cassette", "CassetteMissError"]

KEPT_HEADERS = ("content-type", "location", "retry-after", "set-cookie")


class CassetteMissError(LookupError):
    """The cassette holds no answer for a request (re-record it)."""


def _key(request: httpx.Request) -> str:
    body = hashlib.sha256(request.content).hexdigest()[:16]
    return f"{request.method} {request.url} {body}"


class _Transport(httpx.AsyncBaseTransport):
    def __init__(self, cassette: Cassette) -> None:
        self._cassette = cassette
        self._real: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        cassette = self._cassette
        key = _key(request)
        if not cassette.recording:
            return cassette.answer(key, request)
        if self._real is None:
            self._real = httpx.AsyncHTTPTransport(trust_env=False)
        response = await self._real.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        cassette.keep(key, response.status_code, response.headers.multi_items(), body)
        return cassette.answer(key, request, last=True)

    async def aclose(self) -> None:
        if self._real is not None:
            await self._real.aclose()


class Cassette:
    """One test's recorded HTTP answers (see the module docstring)."""

    def __init__(self, path: Path, *, record: bool) -> None:
        self.path = Path(path)
        self.recording = record
        self._entries: list[dict[str, Any]] = []
        self._served: dict[str, int] = {}
        if not record:
            if not self.path.exists():
                raise CassetteMissError(f"no cassette at {self.path}; record it first")
            self._entries = json.loads(self.path.read_text())["interactions"]
        self.transport: httpx.AsyncBaseTransport = _Transport(self)

    def keep(self, key: str, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        kept = [[k, v] for k, v in headers if k.lower() in KEPT_HEADERS]
        try:
            text, encoding = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode(), "base64"
        self._entries.append(
            {"request": key, "status": status, "headers": kept, "body": text, "encoding": encoding}
        )

    def answer(self, key: str, request: httpx.Request, *, last: bool = False) -> httpx.Response:
        matching = [e for e in self._entries if e["request"] == key]
        if not matching:
            raise CassetteMissError(
                f"cassette {self.path} has no answer for {request.method} {request.url} "
                "(re-record it: pytest --record-cassettes)"
            )
        if last:
            entry = matching[-1]
        else:
            index = self._served.get(key, 0)
            entry = matching[min(index, len(matching) - 1)]
            self._served[key] = index + 1
        raw = entry["body"]
        body = base64.b64decode(raw) if entry["encoding"] == "base64" else raw.encode()
        headers = [(k, v) for k, v in entry["headers"]]
        return httpx.Response(entry["status"], headers=headers, content=body, request=request)

    def save(self) -> None:
        """Write what was recorded (only when recording)."""
        if not self.recording:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": 1, "interactions": self._entries}
        self.path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
