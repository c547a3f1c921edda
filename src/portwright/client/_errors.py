"""The client's error tree: one class per answer a caller handles differently.

APIError                       any non-2xx answer: status, code, message, fields
├── AuthenticationError        401 missing, wrong or revoked key
├── ForbiddenError             403 the key lacks a scope
├── PaymentRequiredError       402 quota or plan limit
├── NotFoundError              404 (unknown adapter: `known` lists them)
├── ConflictError              409 state conflict, idempotency key in flight
├── PayloadTooLargeError       413
├── InvalidRequestError        400 / 422: `fields` names each field and its problem
└── RateLimitedError           429: `retry_after` seconds
"""

from __future__ import annotations

import httpx

from portwright.client._models import ErrorBody, FieldProblem
from portwright.resilience import parse_retry_after

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConflictError",
    "ForbiddenError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "RateLimitedError",
    "raise_for_answer",
]


class APIError(Exception):
    def __init__(self, status: int, body: ErrorBody, headers: httpx.Headers) -> None:
        super().__init__(f"{status} {body.code}: {body.message}")
        self.status = status
        self.code = body.code
        self.message = body.message
        self.fields: list[FieldProblem] = body.fields
        self.known = body.known
        self.headers = headers


class AuthenticationError(APIError): ...


class ForbiddenError(APIError): ...


class PaymentRequiredError(APIError): ...


class NotFoundError(APIError): ...


class ConflictError(APIError): ...


class PayloadTooLargeError(APIError): ...


class InvalidRequestError(APIError): ...


class RateLimitedError(APIError):
    @property
    def retry_after(self) -> float:
        """Seconds the server asked to wait (1 when it said nothing usable)."""
        wait = parse_retry_after(self.headers.get("retry-after"))
        return 1.0 if wait is None else wait


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def raise_for_answer(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValueError:
        body = ErrorBody(code="http_error", message=response.text[:500] or response.reason_phrase)
    raise _BY_STATUS.get(response.status_code, APIError)(
        response.status_code, body, response.headers
    )
