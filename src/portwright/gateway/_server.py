"""Serving the gateway: uvicorn with the limits a reverse proxy would otherwise set.

uvicorn's HTTP protocols bound neither the number of request headers nor the time a
client may take to send them: one connection could send an 8 MB header, or half a head
and then nothing, and hold its socket for as long as it liked. `server_config` serves the
app with `LimitedH11Protocol`, uvicorn's h11 protocol with

- a request head (request line and headers) of at most `max_header_bytes` in all, each
  header line at most `max_header_line_bytes`, at most `max_headers` headers: else 431;
- a head completed within `header_timeout_s` of the moment the server began waiting for
  it (connection opened, or the previous response sent): else 408 when part of a head
  arrived, a plain close when nothing did. A request body the app never read (the
  response went first) is bounded by the same timeout.

Bodies the app does read have their own deadline: `BodyLimitMiddleware` (408).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

if TYPE_CHECKING:
    from uvicorn.server import ServerState

    from portwright.settings import Settings

__all__ = ["LimitedH11Protocol", "ServerLimits", "limited_protocol", "server_config"]


@dataclass(frozen=True)
class ServerLimits:
    """What a request head may be. The defaults follow nginx: 8 KB per header line
    (`large_client_header_buffers 4 8k`: 32 KB in all), 100 headers, and a header timeout
    shorter than nginx's 60 s `client_header_timeout`."""

    max_header_bytes: int = 32_768
    max_header_line_bytes: int = 8_192
    max_headers: int = 100
    header_timeout_s: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_line_bytes=settings.max_header_line_bytes,
            max_headers=settings.max_headers,
            header_timeout_s=settings.request_header_timeout_s,
        )

    def problem(self, request: h11.Request) -> str | None:
        """Why this request head is refused (431), or None."""
        headers = request.headers.raw_items()
        if len(headers) > self.max_headers:
            return f"headers: {len(headers)} of them, more than the limit of {self.max_headers}"
        total = len(request.method) + len(request.target) + 12  # "M T HTTP/1.1\r\n"
        for name, value in headers:
            line = len(name) + len(value) + 4  # "name: value\r\n"
            if line > self.max_header_line_bytes:
                shown = name[:64].decode("ascii", "replace")
                return (
                    f"header {shown!r}: {line} bytes, over the "
                    f"{self.max_header_line_bytes}-byte limit per header"
                )
            total += line
        if total > self.max_header_bytes:
            return f"headers: {total} bytes, over the {self.max_header_bytes}-byte limit"
        return None


class _LimitedConnection(h11.Connection):
    """h11's server side, refusing a request head over the limits with error status 431,
    and remembering the error the protocol answers."""

    def __init__(self, limits: ServerLimits) -> None:
        # h11 refuses (431) a head still incomplete beyond this many buffered bytes.
        super().__init__(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self.limits = limits
        self.refusal: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refusal = exc
            raise
        if isinstance(event, h11.Request):
            problem = self.limits.problem(event)
            if problem is not None:
                self.refusal = h11.RemoteProtocolError(problem, error_status_hint=431)
                raise self.refusal
        return event


_Phase = Literal["head", "drain"]


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header limits and a header read timeout.
    Use `limited_protocol(limits)` for a class bound to particular limits."""

    limits: ClassVar[ServerLimits] = ServerLimits()

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn: _LimitedConnection = _LimitedConnection(self.limits)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase: _Phase | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this for every request h11 refuses; answer with h11's status
        (431 for a head over the limits) and say why."""
        refusal = self.conn.refusal
        if refusal is None:
            self._refuse(400, msg)
        else:
            self._refuse(refusal.error_status_hint, f"{refusal}")

    # -- the header timeout ----------------------------------------------------------------

    def _waiting_for(self) -> _Phase | None:
        """What this connection waits on the client for, outside the app: a request head,
        or the rest of a body the app answered without reading."""
        if self.transport is None or self.transport.is_closing():
            return None
        if self.conn.their_state is h11.IDLE:
            return "head"
        if self.conn.their_state is h11.SEND_BODY and self.conn.our_state in (
            h11.DONE,
            h11.MUST_CLOSE,
        ):
            return "drain"
        return None

    def _watch(self) -> None:
        """Arm the timeout when a wait starts; the deadline does not move while bytes
        trickle in, so a slow client cannot hold the connection by sending a byte a time."""
        phase = self._waiting_for()
        if phase == self._timer_phase:
            return
        self._cancel_timer()
        if phase is not None:
            self._timer_phase = phase
            self._timer = self.loop.call_later(self.limits.header_timeout_s, self._timed_out)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_phase = None

    def _timed_out(self) -> None:
        phase = self._timer_phase
        self._timer = None
        self._timer_phase = None
        if phase is None or self._waiting_for() != phase:
            return
        started, _ = self.conn.trailing_data
        if phase == "head" and started and self.conn.our_state is h11.IDLE:
            self.logger.warning("Request head not complete in %ss.", self.limits.header_timeout_s)
            self._refuse(408, f"request head: not complete within {self.limits.header_timeout_s}s")
            return
        self.transport.close()  # an idle connection, or a body nobody reads: just close

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with a plain-text reason, then close the connection."""
        body = f"{message}\n".encode("ascii", "replace")
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            reason = STATUS_PHRASES.get(status, b"")
            events = [
                h11.Response(status_code=status, headers=headers, reason=reason),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ]
            self.transport.write(b"".join(self.conn.send(event) or b"" for event in events))
        except h11.LocalProtocolError:  # a response already begun: closing is all that is left
            pass
        self.transport.close()


def limited_protocol(limits: ServerLimits) -> type[LimitedH11Protocol]:
    """A `LimitedH11Protocol` class bound to `limits` (uvicorn builds one per connection)."""
    return type("LimitedH11Protocol", (LimitedH11Protocol,), {"limits": limits})


def server_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's config for serving `app` (host, port, log level… in `options`) with the
    request limits in `settings`."""
    protocol = limited_protocol(ServerLimits.from_settings(settings))
    return uvicorn.Config(app, http=protocol, **options)
