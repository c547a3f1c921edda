"""Portwright: durable, observable, auditable automation jobs against web portals."""

__version__ = "0.1.0"

from portwright.client import AsyncClient, Client

__all__ = ["AsyncClient", "Client", "__version__"]
