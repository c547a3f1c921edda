"""The typed Python client for Portwright's public API (httpx): `Client` and `AsyncClient`."""

from portwright.client import models
from portwright.client._calls import Call, Calls
from portwright.client._client import AsyncClient, Client
from portwright.client._errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    RateLimitedError,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Call",
    "Calls",
    "Client",
    "ConflictError",
    "ForbiddenError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "RateLimitedError",
    "models",
]
