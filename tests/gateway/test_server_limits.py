"""Server limits: request heads over the header limits get 431, heads and bodies that do not
arrive in time get 408 (or a closed connection), ordinary requests are untouched.

Every test talks to a real uvicorn server on 127.0.0.1 through a raw socket, since an HTTP
client would refuse to send most of these requests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from portwright.gateway._bodylimit import BodyLimitMiddleware
from portwright.settings import Settings
from tests.gateway._support import ServerThread, Stack

WAIT_S = 20.0  # how long a test waits for an answer before calling the connection stuck


async def _echo(request: Request) -> JSONResponse:
    """A POST's body length; a GET's body is never read."""
    body = await request.body() if request.method == "POST" else b""
    return JSONResponse({"method": request.method, "length": len(body)})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A small app behind the body limit, served with short timeouts."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("limits"),
        request_header_timeout_s=1.0,
        request_body_timeout_s=1.0,
    )
    app = BodyLimitMiddleware(
        Starlette(routes=[Route("/echo", _echo, methods=["GET", "POST"])]),
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.request_body_timeout_s,
    )
    started = ServerThread(app, settings).start()
    yield started
    started.stop()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def _read_until_closed(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (or resets) the connection; the flag says
    whether it did close within WAIT_S."""
    received = b""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return received, False
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def _status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def _body(response: bytes) -> Any:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


def _send_while_reading(port: int, request: bytes) -> tuple[bytes, bool]:
    """Send `request` from a thread while reading the answer: the server may answer (and
    close) long before a large request is all sent."""
    with _connect(port) as sock:

        def send() -> None:
            with contextlib.suppress(OSError):  # the server closed while we still sent
                sock.sendall(request)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = _read_until_closed(sock)
        sender.join(timeout=WAIT_S)
        return answer


def _get(headers: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    lines = [b"GET /echo HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [f"{name}: {value}".encode() for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_an_ordinary_request_is_answered_and_the_connection_kept(server: ServerThread) -> None:
    """Two requests on one keep-alive connection both get 200: the limits leave normal
    traffic alone."""
    with _connect(server.port) as sock:
        for _ in range(2):
            sock.sendall(_get([("X-Trace", "a" * 100)]))
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, f"closed after {answer!r}"
                answer += chunk
            assert _status(answer) == 200
            assert _body(answer) == {"method": "GET", "length": 0}


def test_a_post_body_is_handed_to_the_app_whole(server: ServerThread) -> None:
    """A body sent promptly reaches the handler complete."""
    body = b"x" * 5000
    head = f"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {len(body)}\r\nConnection: close"
    answer, closed = _send_while_reading(server.port, head.encode() + b"\r\n\r\n" + body)
    assert closed
    assert _status(answer) == 200
    assert _body(answer) == {"method": "POST", "length": 5000}


def test_an_8_mb_header_is_refused_with_431(server: ServerThread) -> None:
    """One 8 MB header: 431 and the connection closed, long before it is all sent."""
    answer, closed = _send_while_reading(server.port, _get([("X-Big", "a" * 8_000_000)]))
    assert closed
    assert _status(answer) == 431


def test_a_thousand_headers_are_refused_with_431(server: ServerThread) -> None:
    """1,000 small headers (12 KB in all, under the size limit) are over the count limit."""
    request = _get([(f"X-H{i}", "v") for i in range(1000)])
    answer, closed = _send_while_reading(server.port, request)
    assert closed
    assert _status(answer) == 431
    assert b"more than the limit of 100" in answer


def test_one_header_line_over_8_kb_is_refused_with_431(server: ServerThread) -> None:
    """A single 10 KB header, the head under 32 KB in all: over the per-line limit."""
    answer, closed = _send_while_reading(server.port, _get([("Cookie", "c" * 10_000)]))
    assert closed
    assert _status(answer) == 431
    assert b"'cookie'" in answer.lower()


def test_a_head_over_32_kb_in_all_is_refused_with_431(server: ServerThread) -> None:
    """Fifty 1 KB headers: each line and the count are fine, the total is not."""
    request = _get([(f"X-H{i}", "v" * 1000) for i in range(50)])
    answer, closed = _send_while_reading(server.port, request)
    assert closed
    assert _status(answer) == 431


def test_a_head_that_stalls_is_answered_408_and_closed(server: ServerThread) -> None:
    """Half a head, then nothing: after the 1 s header timeout, 408 and the connection closed
    (without the timeout the read below would wait until WAIT_S and fail)."""
    with _connect(server.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        answer, closed = _read_until_closed(sock)
    assert closed, "the server kept a half-sent head open"
    assert _status(answer) == 408


def test_a_head_sent_a_byte_at_a_time_does_not_move_the_deadline(server: ServerThread) -> None:
    """Trickling a valid head keeps no connection alive: the deadline runs from the start
    of the wait, not from the last byte."""
    with _connect(server.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
        sock.settimeout(0.2)
        deadline = time.monotonic() + WAIT_S
        answer = b""
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"a")
            except OSError:
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        else:
            pytest.fail("a trickling head held the connection open")
    if answer:  # the 408 may be lost to a reset when the client keeps sending
        assert _status(answer) == 408


def test_a_connection_that_sends_nothing_is_closed(server: ServerThread) -> None:
    """A connection opened and left silent is closed after the header timeout."""
    with _connect(server.port) as sock:
        answer, closed = _read_until_closed(sock)
    assert closed, "a silent connection was held open"
    assert answer == b""


def test_a_slow_body_is_answered_408_and_closed(server: ServerThread) -> None:
    """A complete head, then 10 of 100 declared body bytes: 408 after the 1 s body deadline."""
    with _connect(server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        answer, closed = _read_until_closed(sock)
    assert closed, "a stalled body held the connection open"
    assert _status(answer) == 408
    assert _body(answer)["code"] == "body_timeout"


def test_an_unread_body_trickling_after_the_answer_is_cut_off(server: ServerThread) -> None:
    """A GET whose body the app never reads is answered; the rest of the body, never sent,
    does not hold the connection past the header timeout."""
    with _connect(server.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nxx")
        answer, closed = _read_until_closed(sock)
    assert closed, "an unfinished body nobody reads held the connection open"
    assert _status(answer) == 200


@pytest.fixture
def tuned(serve_variant: Any) -> str:
    """The real gateway (auth, rate limits, routes) served with 1 s timeouts."""
    return str(serve_variant(request_header_timeout_s=1.0, request_body_timeout_s=1.0))


def test_the_gateway_answers_a_slow_job_submission_with_408(
    tuned: str, stack: Stack, api_key: str
) -> None:
    """Through the whole gateway: a job submission whose body stalls gets 408, a prompt one
    is accepted, and 1,000 headers get 431."""
    port = int(tuned.rsplit(":", 1)[1])
    job = {"adapter": "echo", "input": {"url": stack.urls["echo"], "key": "slow"}}
    body = json.dumps(job).encode()
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    with _connect(port) as sock:
        sock.sendall(head + b"\r\n" + body[:5])
        answer, closed = _read_until_closed(sock)
    assert closed
    assert _status(answer) == 408
    answer, closed = _send_while_reading(port, head + b"Connection: close\r\n\r\n" + body)
    assert _status(answer) == 202, answer[:300]
    crowded = head + b"".join(f"X-H{i}: v\r\n".encode() for i in range(1000)) + b"\r\n" + body
    answer, closed = _send_while_reading(port, crowded)
    assert closed
    assert _status(answer) == 431


def test_the_limits_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PORTWRIGHT_* variables set every limit; the defaults are a reverse proxy's."""
    assert Settings(data_dir=tmp_path).max_headers == 100
    monkeypatch.setenv("PORTWRIGHT_MAX_HEADERS", "50")
    monkeypatch.setenv("PORTWRIGHT_MAX_HEADER_BYTES", "4096")
    monkeypatch.setenv("PORTWRIGHT_REQUEST_HEADER_TIMEOUT_S", "5")
    monkeypatch.setenv("PORTWRIGHT_REQUEST_BODY_TIMEOUT_S", "7")
    settings = Settings(data_dir=tmp_path)
    assert (settings.max_headers, settings.max_header_bytes) == (50, 4096)
    assert (settings.request_header_timeout_s, settings.request_body_timeout_s) == (5.0, 7.0)
