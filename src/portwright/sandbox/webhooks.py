"""The sandbox world's webhook sources, trusted with secrets of this data dir's own.

`portwright up` and `demo` used to trust public secrets written in the source, so
anyone could forge a shop order or a payment to any running stack. Now the first
start draws one random secret per source and keeps them in
`<data_dir>/sandbox-webhook-secrets.json` (mode 0600); the stack configures both
the sandbox senders and the gateway's sources from that file.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from portwright.settings import WebhookSource

__all__ = ["SANDBOX_SECRETS_FILE", "sandbox_webhook_secrets", "sandbox_webhook_sources"]

SANDBOX_SECRETS_FILE = "sandbox-webhook-secrets.json"


def _fresh() -> dict[str, str]:
    return {
        "consulate": "whsec_" + secrets.token_urlsafe(32),
        "shop-alpha": "shpss_" + secrets.token_hex(24),
        "shop-beta": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
    }


def _read(path: Path) -> dict[str, str]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path}: unreadable sandbox webhook secrets ({exc})") from None
    wanted = set(_fresh())
    if not isinstance(loaded, dict) or not wanted <= set(loaded):
        raise RuntimeError(f"{path}: expected an object with secrets for {sorted(wanted)}")
    values = {name: loaded[name] for name in wanted}
    if not all(isinstance(v, str) and len(v) >= 24 for v in values.values()):
        raise RuntimeError(f"{path}: every secret must be a string of at least 24 characters")
    return values


def sandbox_webhook_secrets(data_dir: Path) -> dict[str, str]:
    """This data dir's sandbox webhook secrets (created on first use, mode 0600)."""
    path = data_dir / SANDBOX_SECRETS_FILE
    if path.exists():
        return _read(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = _fresh()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return _read(path)
    with os.fdopen(fd, "w") as handle:
        json.dump(fresh, handle)
    return fresh


def sandbox_webhook_sources(secrets_: Mapping[str, str]) -> Mapping[str, WebhookSource]:
    """The sources the sandbox world sends from, trusted with `secrets_` (from
    `sandbox_webhook_secrets`): `consulate` (Stripe-style payments → bookings),
    `shop-alpha` (Shopify-style; its signed body must carry a fresh time) and `shop-beta`."""
    return {
        "consulate": WebhookSource(
            scheme="stripe", secrets=[SecretStr(secrets_["consulate"])], handler="payment"
        ),
        "shop-alpha": WebhookSource(
            scheme="shopify", secrets=[SecretStr(secrets_["shop-alpha"])], require_timestamp=True
        ),
        "shop-beta": WebhookSource(scheme="standard", secrets=[SecretStr(secrets_["shop-beta"])]),
    }
