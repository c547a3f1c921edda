"""Portwright: durable, observable, auditable automation jobs against web portals."""

__version__ = "0.1.0"

__all__ = ["__version__"]
