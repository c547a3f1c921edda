"""Fakes and tiny fixtures for testing code built on Portwright (public API)."""

from portwright.testing._echo import EchoAdapter, EchoInput
from portwright.testing._fakes import InMemoryBlobStore, ListIdentity
from portwright.testing._wait import wait_until, wait_until_sync

__all__ = [
    "EchoAdapter",
    "EchoInput",
    "InMemoryBlobStore",
    "ListIdentity",
    "wait_until",
    "wait_until_sync",
]
