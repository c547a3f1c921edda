"""Webhook bodies parsed within limits: too deep is a 400 under every scheme, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import standardwebhooks
import stripe
from pydantic import SecretStr

from portwright.adapters import AdapterRegistry
from portwright.gateway import create_app
from portwright.gateway.webhooks import MAX_DEPTH, SignatureError, verify
from portwright.orchestrator import JobService
from portwright.settings import Settings, WebhookSource
from tests.gateway._support import ServerThread

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


def _signed(source: str, body: bytes) -> dict[str, str]:
    if source == "consulate":
        return {"stripe-signature": stripe.WebhookSignature.generate_signature_header(
            body.decode(), STRIPE)}  # fmt: skip
    if source == "shop-beta":
        msg_id = f"msg_{secrets.token_hex(6)}"
        when = datetime.now(tz=UTC)
        signature = standardwebhooks.Webhook(STANDARD).sign(msg_id, when, body.decode())
        return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": signature}  # fmt: skip
    mac = hmac.new(SHOPIFY.encode(), body, hashlib.sha256).digest()
    return {"x-shop-hmac-sha256": base64.b64encode(mac).decode()}


def test_a_validly_signed_100000_deep_body_is_400_and_a_moderate_one_works(
    settings: Settings, service_for: Callable[..., JobService]
) -> None:
    """With the default 1 MiB body limit, a 100,000-deep body signed under each scheme is a
    400 naming the body (it would be a RecursionError → 500 unchecked); a 30-level body of
    the same kind is accepted and persisted."""
    sources = {
        "consulate": WebhookSource(scheme="stripe", secrets=[SecretStr(STRIPE)]),
        "shop-beta": WebhookSource(scheme="standard", secrets=[SecretStr(STANDARD)]),
        "shop-alpha": WebhookSource(scheme="shopify", secrets=[SecretStr(SHOPIFY)]),
    }
    tuned = settings.model_copy(update={"webhook_sources": sources})
    assert len(DEEP) < tuned.max_body_bytes
    service = service_for(AdapterRegistry(), settings=tuned)
    server = ServerThread(create_app(service, tuned)).start()
    try:
        for source in sources:
            headers = {"content-type": "application/json", **_signed(source, DEEP)}
            refused = httpx.post(f"{server.url}/v1/hooks/{source}", content=DEEP, headers=headers)
            assert refused.status_code == 400, (source, refused.text)
            assert refused.json()["fields"][0]["field"] == "body"
            assert f"deeper than {MAX_DEPTH}" in refused.json()["fields"][0]["problem"]
        assert service.store.inbox.search(limit=10) == []
        for source in ("consulate", "shop-beta"):
            legit = _nested(30)
            headers = {"content-type": "application/json", **_signed(source, legit)}
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
)
def test_the_parser_limits_depth_not_brackets_in_strings(body: bytes, problem: str | None) -> None:
    """Depth is counted outside strings; exactly MAX_DEPTH passes, one more is refused; an
    integer past Python's digit limit and a NUL in an id are 400s, not crashes."""
    headers = {"stripe-signature": stripe.WebhookSignature.generate_signature_header(
        body.decode(errors="replace"), STRIPE)}  # fmt: skip
    if body == b"\xff\xfe":
        headers = _signed("shop-alpha", body)
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
