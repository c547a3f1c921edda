"""Standard Webhooks signing: `webhook-id`, `webhook-timestamp`, `webhook-signature`.

The signed content is ``f"{id}.{timestamp}.{body}"``, HMAC-SHA256 keyed with the
base64 part of a ``whsec_…`` secret; during rotation every active secret signs
and the header carries the signatures space-separated (``v1,<a> v1,<b>``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["new_secret", "sign_headers"]


def new_secret() -> str:
    """A fresh endpoint secret in the Standard Webhooks format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign_headers(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one send of `body`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = [
        "v1," + base64.b64encode(hmac.new(_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets_
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
