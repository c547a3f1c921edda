"""Verifying inbound webhook signatures: Standard Webhooks, Stripe-style, Shopify-style.

Each verifier takes the raw body, the request headers and the source's active
secrets (two during a rotation), compares in constant time, enforces the clock
skew window where the scheme carries a timestamp, and returns the event's
identity for deduplication. Failures raise `SignatureError` naming the header
and the problem.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureError(400, "body", f"not valid JSON ({exc})") from None


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


def _standard(
    body: bytes, headers: Mapping[str, str], secrets: Sequence[str], tolerance: float, now: float
) -> VerifiedEvent:
    msg_id = _require(headers, "webhook-id")
    stamp = _require(headers, "webhook-timestamp")
    signature = _require(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError(400, "webhook-timestamp", "not an integer") from None
    _check_skew("webhook-timestamp", timestamp, tolerance, now)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==")
        expected.append(hmac.new(key, signed, hashlib.sha256).digest())
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
    body: bytes, headers: Mapping[str, str], secrets: Sequence[str], tolerance: float, now: float
) -> VerifiedEvent:
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
    body: bytes, headers: Mapping[str, str], secrets: Sequence[str], tolerance: float, now: float
) -> VerifiedEvent:
    signature = _require(headers, "x-shop-hmac-sha256")
    event_id = _require(headers, "x-shop-webhook-id")
    try:
        presented = [base64.b64decode(signature, validate=True)]
    except binascii.Error:
        raise SignatureError(400, "x-shop-hmac-sha256", "not base64") from None
    expected = [hmac.new(s.encode(), body, hashlib.sha256).digest() for s in secrets]
    if not _any_match(expected, presented):
        raise SignatureError(401, "x-shop-hmac-sha256", "signature matches no active secret")
    triggered = headers.get("x-shop-triggered-at")
    if triggered:
        try:
            when = datetime.fromisoformat(triggered.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise SignatureError(400, "x-shop-triggered-at", "not an ISO 8601 time") from None
        _check_skew("x-shop-triggered-at", when, tolerance, now)
    topic = headers.get("x-shop-topic", "")
    return VerifiedEvent(event_id, headers.get("x-shop-domain", ""), topic, _parse_json(body))


_SCHEMES = {"standard": _standard, "stripe": _stripe, "shopify": _shopify}


def verify(
    scheme: str,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> VerifiedEvent:
    """Verify one delivery under `scheme` ("standard", "stripe" or "shopify")."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return _SCHEMES[scheme](
        body, lowered, secrets, tolerance_s, time.time() if now is None else now
    )
