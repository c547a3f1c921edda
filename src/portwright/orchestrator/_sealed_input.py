"""Secret input fields at rest: a job's `SecretStr` input values are sealed under the tenant's
key (the vault, as the runtime's `secrets`) before the job is stored, opened in memory for the
adapter, and shown as `SECRET_MASK` wherever the job is read."""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, SecretStr

from portwright.resources import BlobSealer
from portwright.sdk import (
    SECRET_MASK,
    PermanentError,
    dump_with_secrets,
    map_secret_fields,
    mask_secret_fields,
)

__all__ = ["SEALED_PREFIX", "InputSealer", "public_input"]

SEALED_PREFIX = "pwsealed:v1:"
_CONTEXT = "job-input"  # bound to the tenant: a retry (a new job) reuses the sealed value
_MAX_DEPTH = 64


def _has_secret(value: Any, depth: int = 0) -> bool:
    if isinstance(value, SecretStr):
        return True
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return any(_has_secret(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_secret(v, depth + 1) for v in value)
    return False


def _scrub(value: Any, depth: int = 0) -> Any:
    """`value` with every sealed token masked, wherever it is (the adapter unknown)."""
    if isinstance(value, str):
        return SECRET_MASK if value.startswith(SEALED_PREFIX) else value
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, depth + 1) for v in value]
    return value


def public_input(model: type[BaseModel] | None, data: dict[str, Any]) -> dict[str, Any]:
    """A job's input as it may be shown: secret fields of `model` (the adapter's input model,
    if known) and every sealed value masked."""
    shown = mask_secret_fields(model, data) if model is not None else data
    scrubbed: dict[str, Any] = _scrub(shown)
    return scrubbed


class InputSealer:
    """Seals and opens the secret fields of job inputs with the runtime's `secrets`, when they
    can seal (the vault); without a sealer the values are stored as given and only masked
    when read."""

    def __init__(self, secrets: object) -> None:
        self._sealer = secrets if isinstance(secrets, BlobSealer) else None

    @staticmethod
    def has_secrets(model: BaseModel) -> bool:
        return _has_secret(model.model_dump(mode="python"))

    def seal(self, tenant_id: str, model: BaseModel) -> dict[str, Any]:
        """The validated input as stored: JSON, each `SecretStr` value sealed (a value that is
        already this tenant's sealed token, as when a job is retried, is kept)."""

        def seal(value: str) -> str:
            if self._sealer is None or self._opens(tenant_id, value):
                return value
            sealed = self._sealer.seal_blob(tenant_id, value.encode(), context=_CONTEXT)
            return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")

        return dump_with_secrets(model, seal)

    def open(self, tenant_id: str, model: type[BaseModel], data: dict[str, Any]) -> Any:
        """The stored input with its sealed secret fields opened, for the adapter (in memory
        only). PermanentError if one does not open (another tenant's, or a lost key)."""

        def open_(value: str) -> str:
            if not value.startswith(SEALED_PREFIX):
                return value
            opened = self._open(tenant_id, value)
            if opened is None:
                raise PermanentError("a secret input field could not be opened with this key")
            return opened

        return map_secret_fields(model, data, open_)

    def _opens(self, tenant_id: str, value: str) -> bool:
        return value.startswith(SEALED_PREFIX) and self._open(tenant_id, value) is not None

    def _open(self, tenant_id: str, token: str) -> str | None:
        if self._sealer is None:
            return None
        try:
            box = base64.urlsafe_b64decode(token.removeprefix(SEALED_PREFIX).encode("ascii"))
            return self._sealer.open_blob(tenant_id, box, context=_CONTEXT).decode()
        except Exception:  # noqa: BLE001 - not a sealed value of this tenant: it does not open
            return None
