"""`Idempotency-Key` on every POST, as pure ASGI middleware (after authentication).

- The first request with a key claims it (per tenant, 24 h) and its answer is stored
  before it is sent: a client that got the answer and sends the request again gets the
  replay, never a 409 for a request that has ended.
- A replay with the same body gets the stored status and body back
  (`Idempotent-Replayed: true`).
- While the first is still running, the same key answers 409.
- The same key with a different method, path or body answers 422.
- A 5xx (or a crash) releases the key, so the client may simply try again. With the
  database unreachable the claim cannot be made (503, nothing stored); if it goes away after
  the claim, the release may fail too and the key stays claimed until its lease ends.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portwright._ids import claimed_id, claimed_ids
from portwright.gateway._errors import error_response
from portwright.gateway._principal import principal_of
from portwright.store import Store, is_database_unavailable

log = structlog.get_logger("portwright.gateway")

__all__ = ["IdempotencyMiddleware", "idempotent_id", "idempotent_ids", "read_body"]

HEADER = b"idempotency-key"
CLAIM_STATE = "idempotency_claim"
MAX_KEY_LEN = 255
KEPT_HEADERS = ("content-type", "location")


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay_receive(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope["path"].encode(), scope["query_string"]):
        digest.update(part + b"\0")
    digest.update(body)
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(
        self, app: ASGIApp, *, store: Store, ttl_s: float = 86_400.0, lease_s: float = 120.0
    ) -> None:
        self.app = app
        self.store = store
        self.ttl_s = ttl_s
        self.lease_s = lease_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = principal_of(scope) if scope["type"] == "http" else None
        key = _header(scope) if principal is not None and scope["method"] == "POST" else None
        if principal is None or key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LEN or not key.isprintable():
            response = error_response(
                400,
                "bad_idempotency_key",
                f"Idempotency-Key: must be 1 to {MAX_KEY_LEN} printable characters",
            )
            await response(scope, receive, send)
            return
        body = await read_body(receive)
        repo = self.store.idempotency
        claim = await asyncio.to_thread(
            repo.begin,
            principal.tenant_id,
            key,
            _fingerprint(scope, body),
            lease_s=self.lease_s,
            ttl_s=self.ttl_s,
        )
        if claim.outcome == "mismatch":
            response = error_response(
                422,
                "idempotency_key_reused",
                "Idempotency-Key: already used with a different request (method, path or body)",
            )
        elif claim.outcome == "in_flight":
            response = error_response(
                409,
                "idempotency_in_flight",
                "Idempotency-Key: the first request with this key is still in flight",
                headers={"retry-after": "1"},
            )
        elif claim.outcome == "done":
            await _replay(send, claim.status_code or 200, claim.headers or {}, claim.body or b"")
            return
        else:
            scope.setdefault("state", {})[CLAIM_STATE] = (
                principal.tenant_id,
                key,
                claim.claimed_at,
            )
            await self._first(scope, body, receive, send, principal.tenant_id, key)
            return
        await response(scope, receive, send)

    async def _first(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, tenant_id: str, key: str
    ) -> None:
        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        held: list[Message] = []

        async def capture(message: Message) -> None:
            # held back until the answer is stored (the gateway's answers are whole JSON
            # bodies, never a stream): sent first, a client's quick retry would find the
            # key still in flight (409) — a CI rehearsal under load saw it
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    text = name.decode("latin-1").lower()
                    if text in KEPT_HEADERS:
                        headers[text] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            held.append(message)

        repo = self.store.idempotency
        try:
            await self.app(scope, replay_receive(body, receive), capture)
        except BaseException:
            await asyncio.shield(self._release(tenant_id, key))
            raise
        try:
            if status >= 500 or status == 429:
                await self._release(tenant_id, key)
            else:
                # the work is done: with the database gone the answer still goes out, and
                # the claim's lease ends it (a retry is then served afresh, finding what
                # this request created by its ids)
                await self._unless_down(
                    "answer not stored",
                    repo.complete,
                    tenant_id,
                    key,
                    status_code=status,
                    headers=headers,
                    body=b"".join(chunks),
                )
        finally:  # the answer goes out whatever became of storing it
            for message in held:
                await send(message)

    async def _release(self, tenant_id: str, key: str) -> None:
        """Free the key for a retry; with the database gone, its lease frees it instead (the
        original error is on its way up, or the answer goes out after this)."""
        await self._unless_down("key not released", self.store.idempotency.release, tenant_id, key)

    async def _unless_down(
        self, what: str, fn: Callable[..., object], *args: Any, **kw: Any
    ) -> None:
        """Run `fn` off the loop; the database unreachable is a warning (the claim's lease
        ends what could not be written), anything else is raised."""
        try:
            await asyncio.to_thread(fn, *args, **kw)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            log.warning(
                "idempotency record not written: database unavailable; its lease will end",
                what=what,
                lease_s=self.lease_s,
                error=type(exc).__name__,
            )


async def _replay(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw += [
        (b"idempotent-replayed", b"true"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return str(value.decode("latin-1")).strip()
    return None


def idempotent_id(request: Request, prefix: str) -> str | None:
    """The id a request under an `Idempotency-Key` gives what it creates (None without a
    key): the same for every attempt of the same claim — a retry after the gateway died
    between creating the record and storing the answer finds the first record instead of
    making a second (`service.submit` returns an existing job id as it is)."""
    claim = request.scope.get("state", {}).get(CLAIM_STATE)
    if not claim or claim[2] is None:
        return None
    tenant_id, key, claimed_at = claim
    return claimed_id(prefix, claimed_at, tenant_id, request.url.path, key)


def idempotent_ids(request: Request, prefix: str, count: int) -> list[str] | None:
    """`idempotent_id` for a request that creates `count` records at once (a batch's
    items): ids in the order given, the same for every attempt of the same claim."""
    claim = request.scope.get("state", {}).get(CLAIM_STATE)
    if not claim or claim[2] is None:
        return None
    tenant_id, key, claimed_at = claim
    return claimed_ids(prefix, claimed_at, count, tenant_id, request.url.path, key)
