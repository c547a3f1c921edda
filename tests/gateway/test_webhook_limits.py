"""Webhook bodies parsed within limits: too deep is a 400 under every scheme, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime

import httpx
import pytest
import standardwebhooks
import stripe
from pydantic import SecretStr

from portwright.gateway import create_app
from portwright.gateway.webhooks import MAX_DEPTH, SignatureError, verify
from portwright.settings import Settings, WebhookSource
from tests.gateway._support import ServerThread, Stack

STRIPE = "whsec_limits_stripe"
STANDARD = "whsec_" + base64.b64encode(b"limits-standard-key-0123456789").decode()
SHOPIFY = "shpss_limits_shopify"
DEEP = b'{"id": "evt_deep", "type": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _nested(levels: int) -> bytes:
    value: object = {"leaf": True}
    for _ in range(levels - 2):  # the envelope and the leaf are two levels
        value = {"child": value}
    event = {"id": f"evt_{secrets.token_hex(6)}", "type": "x", "a": value}
    return json.dumps(event).encode()


def _signed(scheme: str, body: bytes) -> dict[str, str]:
    if scheme == "stripe":
        return {"stripe-signature": stripe.WebhookSignature.generate_signature_header(
            body.decode(), STRIPE)}  # fmt: skip
    if scheme == "standard":
        msg_id = f"msg_{secrets.token_hex(6)}"
        when = datetime.now(tz=UTC)
        signature = standardwebhooks.Webhook(STANDARD).sign(msg_id, when, body.decode())
        return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": signature}  # fmt: skip
    mac = hmac.new(SHOPIFY.encode(), body, hashlib.sha256).digest()
    return {"x-shop-hmac-sha256": base64.b64encode(mac).decode()}


def test_a_validly_signed_100000_deep_body_is_400_and_a_moderate_one_works(
    stack: Stack,
) -> None:
    """With the default 1 MiB body limit, a 100,000-deep body signed under each scheme is a
    400 naming the body (it would be a RecursionError → 500 unchecked) and nothing is
    persisted; a 30-level body of the same kind is accepted."""
    sources = {
        "deep-stripe": WebhookSource(scheme="stripe", secrets=[SecretStr(STRIPE)]),
        "deep-standard": WebhookSource(scheme="standard", secrets=[SecretStr(STANDARD)]),
        "deep-shopify": WebhookSource(scheme="shopify", secrets=[SecretStr(SHOPIFY)]),
    }
    default_limit = Settings.model_fields["max_body_bytes"].default
    everything = {**stack.settings.webhook_sources, **sources}  # the stack's keep their handlers
    tuned = stack.settings.model_copy(
        update={"webhook_sources": everything, "max_body_bytes": default_limit}
    )
    assert len(DEEP) < tuned.max_body_bytes
    server = ServerThread(create_app(stack.service, tuned)).start()  # the stack's runtime
    try:
        for source, config in sources.items():
            headers = {"content-type": "application/json", **_signed(config.scheme, DEEP)}
            refused = httpx.post(f"{server.url}/v1/hooks/{source}", content=DEEP, headers=headers)
            assert refused.status_code == 400, (source, refused.text)
            assert refused.json()["fields"][0]["field"] == "body"
            assert f"deeper than {MAX_DEPTH}" in refused.json()["fields"][0]["problem"]
            assert stack.store.inbox.search(source=source, limit=10) == []
        for source in ("deep-stripe", "deep-standard"):
            legit = _nested(30)
            headers = {"content-type": "application/json",
                       **_signed(sources[source].scheme, legit)}  # fmt: skip
            ok = httpx.post(f"{server.url}/v1/hooks/{source}", content=legit, headers=headers)
            assert ok.status_code == 202, (source, ok.text)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_nested(MAX_DEPTH), None),
        (_nested(MAX_DEPTH + 1), "deeper than"),
        (b'{"id": "evt_1", "type": "x", "n": ' + b"9" * 5000 + b"}", "within limits"),
        (b'{"id": "evt_1", "type": "' + b"[" * 200 + b'"}', None),  # brackets in a string
        (b'{"id": "evt_1\\u0000", "type": "x"}', "control characters"),
        (b"\xff\xfe", "not valid JSON"),
    ],
    # fixed ids: the bodies carry random event ids, and xdist workers must collect alike
    ids=["max-depth", "one-deeper", "long-int", "brackets-in-string", "control-char", "not-json"],
)
def test_the_parser_limits_depth_not_brackets_in_strings(body: bytes, problem: str | None) -> None:
    """Depth is counted outside strings; exactly MAX_DEPTH passes, one more is refused; an
    integer past Python's digit limit and a NUL in an id are 400s, not crashes."""
    headers = {"stripe-signature": stripe.WebhookSignature.generate_signature_header(
        body.decode(errors="replace"), STRIPE)}  # fmt: skip
    if body == b"\xff\xfe":
        headers = _signed("shopify", body)
        scheme, secret = "shopify", SHOPIFY
    else:
        scheme, secret = "stripe", STRIPE
    if problem is None:
        assert verify(scheme, body, headers, [secret]).event_id.startswith("evt_")
        return
    with pytest.raises(SignatureError) as refused:
        verify(scheme, body, headers, [secret])
    assert refused.value.status == 400
    assert problem in refused.value.problem


async def test_a_too_deep_row_from_before_the_limit_fails_permanently_in_the_handler() -> None:
    """An inbox row persisted before bodies were depth-checked does not crash the payment
    handler with a RecursionError (retried until dead): it fails at once, naming the body."""
    from portwright.apps.consulate.webhooks import payment_to_booking
    from portwright.gateway.webhooks import PermanentWebhookError
    from portwright.store import InboxRecord

    row = InboxRecord(
        id="whk_old", source="consulate", external_id="", event_id="evt_deep", checksum="",
        tenant_id=None, event_type="payment_intent.succeeded", payload=DEEP, status="processing",
        attempts=1, next_attempt_at=0.0, lease_until=None, leased_by=None, result=None,
        received_at=0.0, processed_at=None,
    )  # fmt: skip
    with pytest.raises(PermanentWebhookError, match="deeper than"):
        await payment_to_booking(row, None)  # type: ignore[arg-type]  # never reached
