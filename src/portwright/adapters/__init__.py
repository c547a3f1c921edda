"""Adapters: one per portal. The registry, and the example adapters for the sandbox portals."""

from portwright.adapters._registry import AdapterRegistry

__all__ = ["AdapterRegistry"]
