"""`up`/`demo` trust sandbox webhook secrets drawn per data dir, never ones in the source."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import standardwebhooks
import stripe

from portwright.cli._stack import start_stack
from portwright.sandbox import SandboxWorld, consulate, shops
from portwright.sandbox.webhooks import SANDBOX_SECRETS_FILE
from portwright.settings import Settings

# What every `up` stack trusted before (public, in the source): all must be refused now.
OLD_SHOP_ALPHA = "shpss_sandbox_alpha_secret"
OLD_SHOP_BETA = "whsec_" + base64.b64encode(b"portwright-sandbox-shop-beta-key").decode()
OLD_CONSULATE = "whsec_sandbox"


def _shopify(secret: str) -> tuple[bytes, dict[str, str]]:
    meta = {"id": secrets.token_hex(8), "topic": "orders/cancelled",
            "triggered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    body = json.dumps({"id": 5100001001, "cancelled_at": meta["triggered_at"],
                       "webhook": meta}).encode()  # fmt: skip
    mac = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return body, {"x-shop-hmac-sha256": mac}


def _standard(secret: str) -> tuple[bytes, dict[str, str]]:
    body = b'{"type": "order.cancelled", "data": {"id": "ord_1"}}'
    msg_id, when = f"msg_{secrets.token_hex(6)}", datetime.now(tz=UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body.decode())
    return body, {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
                  "webhook-signature": signature}  # fmt: skip


def _stripe(secret: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": f"evt_{secrets.token_hex(6)}",
                       "type": "payment_intent.succeeded"}).encode()  # fmt: skip
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret)
    return body, {"stripe-signature": header}


FORGERIES = {
    "shop-alpha": (_shopify, OLD_SHOP_ALPHA),
    "shop-beta": (_standard, OLD_SHOP_BETA),
    "consulate": (_stripe, OLD_CONSULATE),
}


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, worker_id=f"up-{secrets.token_hex(3)}", log_json=False,
                    heartbeat_interval_s=0.3, queue_polling_interval_s=0.05)  # fmt: skip


def _up_once(data_dir: Path, seed: int) -> dict[str, str]:
    """Start the `up` stack on `data_dir` with a sandbox world; check the old built-in
    secrets are refused and the world's own senders are trusted; return the secrets."""
    with SandboxWorld([*consulate.specs(), *shops.specs()], seed=seed) as world:
        stack = start_stack(_settings(data_dir), world=world)
        try:
            path = data_dir / SANDBOX_SECRETS_FILE
            stored: dict[str, str] = json.loads(path.read_text())
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert (
                world.context("consulate").options["payment_webhook_secret"] == stored["consulate"]
            )
            for shop in ("shop-alpha", "shop-beta"):
                assert world.context(shop).options["secret"] == stored[shop]
            for source, (sign, old) in FORGERIES.items():
                body, headers = sign(old)
                headers["content-type"] = "application/json"
                url = f"{stack.gateway_url}/v1/hooks/{source}"
                forged = httpx.post(url, content=body, headers=headers)
                assert forged.status_code == 401, (source, forged.text)
                body, headers = sign(stored[source])  # this data dir's secret: accepted
                assert httpx.post(url, content=body, headers=headers).status_code in (200, 202)
            for shop in ("shop-alpha", "shop-beta"):  # the sandbox's own sends are trusted
                burst = httpx.post(f"{world.url(shop)}/_emit/burst",
                                   json={"count": 3, "wait": True}, timeout=30)  # fmt: skip
                assert burst.json()["delivered"] == 3, burst.text
            assert not stack.service.store.inbox.search(source="shop-alpha", status="failed")
        finally:
            stack.stop()
    return stored


@pytest.mark.timeout(300)
def test_two_up_data_dirs_get_different_secrets_and_the_old_built_in_ones_are_refused(
    tmp_path: Path,
) -> None:
    """Each data dir draws its own secrets on first start and keeps them across restarts;
    a webhook signed with the secrets that used to be hard-coded is a 401 on every source,
    while the sandbox's own (now per data dir) deliveries are accepted."""
    first = _up_once(tmp_path / "one", seed=4)
    second = _up_once(tmp_path / "two", seed=5)
    assert set(first) == set(second) == set(FORGERIES)
    assert all(first[name] != second[name] for name in first)
    assert not {OLD_SHOP_ALPHA, OLD_SHOP_BETA, OLD_CONSULATE} & {*first.values(), *second.values()}
    assert _up_once(tmp_path / "one", seed=6) == first  # persisted: a restart trusts the same ones
