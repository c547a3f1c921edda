"""Idempotency keys: replay the first answer, 409 while in flight, 422 on a different body."""

from portwright.gateway.idempotency._middleware import (
    IdempotencyMiddleware,
    idempotent_id,
    idempotent_ids,
    read_body,
)

__all__ = ["IdempotencyMiddleware", "idempotent_id", "idempotent_ids", "read_body"]
