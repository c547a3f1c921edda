"""Standard Webhooks signing: `webhook-id`, `webhook-timestamp`, `webhook-signature`.

The signed content is ``f"{id}.{timestamp}.{body}"``, HMAC-SHA256 keyed with the
base64 part of a ``whsec_…`` secret; during rotation every active secret signs
and the header carries the signatures space-separated (``v1,<a> v1,<b>``).

Endpoint secrets are stored sealed (`SecretSealer`, the vault: ``pwsec1:…``, bound
to the tenant and the endpoint id), opened only to sign a send. Rows written
before sealing hold plain ``whsec_…`` secrets: they still sign, and
`seal_stored_secrets` seals them in place.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from standardwebhooks import Webhook

from portwright.store import EndpointRecord, Store

__all__ = [
    "SEALED_PREFIX",
    "SecretSealer",
    "endpoint_context",
    "new_secret",
    "open_endpoint",
    "seal_endpoint_secret",
    "seal_stored_secrets",
    "sign_headers",
]

SEALED_PREFIX = "pwsec1:"  # the vault's sealed-secret format (Vault.seal_secret)


class SecretSealer(Protocol):
    """Seals short secrets for a tenant and a context (the vault implements it)."""

    def seal_secret(self, tenant_id: str, value: str, *, context: str) -> str: ...

    def open_secret(self, tenant_id: str, sealed: str, *, context: str) -> str: ...


class SealedSecretError(RuntimeError):
    """An endpoint's secret is sealed and cannot be opened here (no vault, wrong key)."""


def endpoint_context(endpoint_id: str) -> str:
    """What an endpoint's sealed secret is bound to: copied to another row, it won't open."""
    return f"webhook-endpoint|{endpoint_id}"


def seal_endpoint_secret(
    sealer: SecretSealer, tenant_id: str, endpoint_id: str, secret: str
) -> str:
    return sealer.seal_secret(tenant_id, secret, context=endpoint_context(endpoint_id))


def open_endpoint(sealer: SecretSealer | None, endpoint: EndpointRecord) -> EndpointRecord:
    """`endpoint` with its secrets in clear, to sign one send (plain legacy ones as they
    are). SealedSecretError when a sealed one cannot be opened."""
    opened = []
    for value in endpoint.secrets:
        if not value.startswith(SEALED_PREFIX):
            opened.append(value)
            continue
        if sealer is None:
            raise SealedSecretError(f"endpoint {endpoint.id}: secret is sealed; no vault here")
        try:
            context = endpoint_context(endpoint.id)
            opened.append(sealer.open_secret(endpoint.tenant_id, value, context=context))
        except Exception as exc:  # noqa: BLE001 - wrong master key, tampered row
            raise SealedSecretError(
                f"endpoint {endpoint.id}: secret does not open ({exc})"
            ) from None
    return replace(endpoint, secrets=opened)


def seal_stored_secrets(store: Store, sealer: SecretSealer) -> int:
    """Seal, in place, every endpoint secret still stored in clear (rows from before
    sealing); returns how many endpoints changed. Safe to run at every start, in several
    processes: a row changed meanwhile (a rotation) is left for the next run."""
    changed = 0
    for endpoint in store.endpoints.search():
        plain = [s for s in endpoint.secrets if not s.startswith(SEALED_PREFIX)]
        if not plain:
            continue
        sealed = [
            s if s.startswith(SEALED_PREFIX)
            else seal_endpoint_secret(sealer, endpoint.tenant_id, endpoint.id, s)
            for s in endpoint.secrets
        ]  # fmt: skip
        if store.endpoints.replace_secrets(endpoint.id, sealed, if_updated_at=endpoint.updated_at):
            changed += 1
    return changed


def new_secret() -> str:
    """A fresh endpoint secret in the Standard Webhooks format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign_headers(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one send of `body` (signed by the
    `standardwebhooks` library, once per active secret)."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    signatures = [Webhook(s).sign(msg_id, when, body) for s in secrets_]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
