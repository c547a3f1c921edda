"""API-key authentication: key issuing and hashing, and the middleware that checks them."""

from portwright.gateway._principal import Principal, principal_of
from portwright.gateway.auth._keys import (
    IssuedKey,
    hash_secret,
    issue_key,
    parse_key,
    verify_secret,
)
from portwright.gateway.auth._middleware import AuthMiddleware

__all__ = [
    "AuthMiddleware",
    "IssuedKey",
    "Principal",
    "hash_secret",
    "issue_key",
    "parse_key",
    "principal_of",
    "verify_secret",
]
