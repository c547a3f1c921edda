"""Fakes and tiny fixtures for testing code built on Portwright (public API)."""

from portwright.testing._echo import EchoAdapter, EchoInput, echo_service
from portwright.testing._fakes import InMemoryBlobStore, ListIdentity
from portwright.testing._wait import wait_until, wait_until_sync

__all__ = [
    "EchoAdapter",
    "EchoInput",
    "InMemoryBlobStore",
    "ListIdentity",
    "echo_service",
    "wait_until",
    "wait_until_sync",
]
