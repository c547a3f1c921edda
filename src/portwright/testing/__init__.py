"""Fakes and tiny fixtures for testing code built on Portwright (public API)."""

from portwright.testing._echo import EchoAdapter, EchoInput, echo_service
from portwright.testing._fakes import InMemoryBlobStore, ListIdentity

__all__ = ["EchoAdapter", "EchoInput", "InMemoryBlobStore", "ListIdentity", "echo_service"]
