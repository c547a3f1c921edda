"""Verifying inbound webhook signatures: Standard Webhooks, Stripe-style, Shopify-style.

Each verifier takes the raw body, the request headers and the source's active
secrets (two during a rotation), compares in constant time, enforces the clock
skew window where the scheme carries a timestamp, and returns the event's
identity for deduplication. Failures raise `SignatureError` naming the header
and the problem.

Only what the signature covers is trusted. Standard Webhooks signs the message
id and timestamp with the body, Stripe-style the timestamp with the body; a
Shopify-style signature covers the body alone, so its event id, topic, shop
domain and time come from the body's `webhook` object (`id`, `topic`,
`shop_domain`, `triggered_at`): the `x-shop-*` headers, when sent, must agree
with it (a captured body resent under another topic is refused), and a source
with `require_timestamp` refuses a body without a `triggered_at` in the window.
Bodies are parsed within limits (`parse_body`): too deep or unparseable is a 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from portwright.gateway.webhooks._json import BodyError, parse_body

__all__ = ["SignatureError", "VerifiedEvent", "verify"]


class SignatureError(ValueError):
    """The webhook is not authentic or not acceptable; `status` is 400 or 401."""

    def __init__(self, status: int, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.status = status
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """An authentic event: (external id, event id) dedupe it within its source."""

    event_id: str
    external_id: str
    event_type: str
    payload: Any


def _parse_json(body: bytes) -> Any:
    try:
        return parse_body(body)
    except BodyError as exc:
        raise SignatureError(400, "body", exc.problem) from None


def _check_skew(field: str, timestamp: float, tolerance: float, now: float) -> None:
    if abs(now - timestamp) > tolerance:
        direction = "old" if timestamp < now else "far in the future"
        raise SignatureError(
            401, field, f"timestamp is too {direction} (outside ±{tolerance:g}s): replay refused"
        )


def _require(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(400, name, "header missing")
    return value


def _any_match(expected: Sequence[bytes], presented: Sequence[bytes]) -> bool:
    matched = False
    for want in expected:
        for got in presented:
            matched |= hmac.compare_digest(want, got)
    return matched


class _Scheme(Protocol):
    def __call__(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        tolerance: float,
        now: float,
        require_timestamp: bool,
    ) -> VerifiedEvent: ...


def _standard(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    tolerance: float,
    now: float,
    require_timestamp: bool,
) -> VerifiedEvent:
    """The timestamp is signed and always required."""
    msg_id = _require(headers, "webhook-id")
    stamp = _require(headers, "webhook-timestamp")
    signature = _require(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError(400, "webhook-timestamp", "not an integer") from None
    _check_skew("webhook-timestamp", timestamp, tolerance, now)
    # The library computes the signatures; its own `verify` is not used: it reads the wall
    # clock with a fixed 5-minute window and raises one error for every problem, where this
    # checks against an injected clock and tolerance and names the field at fault.
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    expected = []
    for secret in secrets:
        try:
            signature_of_secret = Webhook(secret).sign(msg_id, when, body)
        except (EmptyWebhookSecretError, binascii.Error, ValueError):
            continue  # a secret that cannot sign matches nothing
        expected.append(base64.b64decode(signature_of_secret.removeprefix("v1,")))
    presented = []
    for part in signature.split():
        version, _, value = part.partition(",")
        if version == "v1":
            try:
                presented.append(base64.b64decode(value, validate=True))
            except binascii.Error:
                continue
    if not _any_match(expected, presented):
        raise SignatureError(401, "webhook-signature", "no signature matches an active secret")
    payload = _parse_json(body)
    kind = payload.get("type", "") if isinstance(payload, dict) else ""
    return VerifiedEvent(msg_id, "", str(kind), payload)


def _stripe(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    tolerance: float,
    now: float,
    require_timestamp: bool,
) -> VerifiedEvent:
    """The timestamp (`t=`) is signed and always required; id and type are in the body."""
    header = _require(headers, "stripe-signature")
    pairs = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [v for k, v in pairs if k.strip() == "t"]
    try:
        timestamp = int(stamps[0])
    except (IndexError, ValueError):
        raise SignatureError(400, "stripe-signature", "no integer t=… timestamp") from None
    _check_skew("stripe-signature", timestamp, tolerance, now)
    signed = f"{timestamp}.".encode() + body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest().encode() for s in secrets]
    presented = [v.strip().encode() for k, v in pairs if k.strip() == "v1"]
    if not _any_match(expected, presented):
        raise SignatureError(401, "stripe-signature", "no v1 signature matches an active secret")
    payload = _parse_json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise SignatureError(400, "body.id", "a Stripe-style event needs a string id")
    return VerifiedEvent(
        payload["id"], str(payload.get("account") or ""), str(payload.get("type", "")), payload
    )


def _shopify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    tolerance: float,
    now: float,
    require_timestamp: bool,
) -> VerifiedEvent:
    """The signature covers the body only: identity, topic and time come from the body's
    `webhook` object; headers that disagree with it are refused."""
    signature = _require(headers, "x-shop-hmac-sha256")
    try:
        presented = [base64.b64decode(signature, validate=True)]
    except binascii.Error:
        raise SignatureError(400, "x-shop-hmac-sha256", "not base64") from None
    expected = [hmac.new(s.encode(), body, hashlib.sha256).digest() for s in secrets]
    if not _any_match(expected, presented):
        raise SignatureError(401, "x-shop-hmac-sha256", "signature matches no active secret")
    payload = _parse_json(body)
    meta = payload.get("webhook") if isinstance(payload, dict) else None
    if not isinstance(meta, dict):
        raise SignatureError(
            400,
            "body.webhook",
            "missing: a Shopify-style signature covers only the body, so the event's id and "
            "topic must be in it (webhook.id, webhook.topic)",
        )
    event_id = _body_text(meta, "id", required=True)
    topic = _body_text(meta, "topic", required=True)
    domain = _body_text(meta, "shop_domain", required=False)
    _agrees(headers, "x-shop-webhook-id", event_id, "id")
    _agrees(headers, "x-shop-topic", topic, "topic")
    _agrees(headers, "x-shop-domain", domain, "shop_domain")
    triggered = meta.get("triggered_at")
    if triggered is None:
        if require_timestamp:
            raise SignatureError(
                401,
                "body.webhook.triggered_at",
                "missing: this source requires a signed timestamp (replay window)",
            )
    else:
        when = _iso_time("body.webhook.triggered_at", triggered)
        _check_skew("body.webhook.triggered_at", when, tolerance, now)
    return VerifiedEvent(event_id, domain, topic, payload)


def _body_text(meta: Mapping[str, Any], key: str, *, required: bool) -> str:
    value = meta.get(key)
    if value is None and not required:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        problem = "missing" if value is None else "must be a non-empty string"
        raise SignatureError(400, f"body.webhook.{key}", problem)
    return str(value)


def _agrees(headers: Mapping[str, str], name: str, signed: str, key: str) -> None:
    """An unsigned header may repeat what the body says, never say something else."""
    value = headers.get(name)
    if value is not None and value != signed:
        raise SignatureError(
            401,
            name,
            f"disagrees with the signed body's webhook.{key} ({signed!r}): "
            "a signature over the body does not cover headers",
        )


def _iso_time(field: str, value: Any) -> float:
    if not isinstance(value, str):
        raise SignatureError(400, field, "not an ISO 8601 time")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        raise SignatureError(400, field, "not an ISO 8601 time") from None


_LIMITS = (("event_id", "event id", 255), ("external_id", "shop/account id", 200),
           ("event_type", "event type", 200))  # fmt: skip


def _checked(event: VerifiedEvent) -> VerifiedEvent:
    """Identity fields stored and matched on: bounded, and free of control characters."""
    for attr, label, limit in _LIMITS:
        value: str = getattr(event, attr)
        if len(value) > limit:
            raise SignatureError(400, label, f"longer than {limit} characters")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise SignatureError(400, label, "contains control characters")
    return event


_SCHEMES: dict[str, _Scheme] = {"standard": _standard, "stripe": _stripe, "shopify": _shopify}


def verify(
    scheme: str,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
    require_timestamp: bool = False,
) -> VerifiedEvent:
    """Verify one delivery under `scheme` ("standard", "stripe" or "shopify"); with
    `require_timestamp`, an event without a signed time in the window is refused."""
    lowered = {k.lower(): v for k, v in headers.items()}
    clock = time.time() if now is None else now
    event = _SCHEMES[scheme](body, lowered, secrets, tolerance_s, clock, require_timestamp)
    return _checked(event)
