"""Request bodies are bounded before any handler runs: over the size limit, 413; not
complete within the body deadline, 408. Either answer closes the connection."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portwright.gateway._errors import error_response

__all__ = ["BodyLimitMiddleware"]

_CLOSE = {"Connection": "close"}  # the rest of the body is not worth reading


class BodyLimitMiddleware:
    """A declared Content-Length over the limit is refused at once. Otherwise the body is
    read here, up to the limit, within `timeout_s` of the request head (a slow client
    cannot hold a connection by sending a byte a second), and handed on whole."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def _too_large(self) -> ASGIApp:
        return error_response(
            413,
            "body_too_large",
            f"body: larger than the {self.max_bytes}-byte limit",
            headers=_CLOSE,
        )

    def _too_slow(self) -> ASGIApp:
        return error_response(
            408,
            "body_timeout",
            f"body: not received within {self.timeout_s}s of the request head",
            headers=_CLOSE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        await self._too_large()(scope, receive, send)
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._too_slow()(scope, receive, send)
            return
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
