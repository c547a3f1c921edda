"""Adapters: one per portal. The registry, and the example adapters for the sandbox portals."""

from portwright.adapters._registry import AdapterRegistry

__all__ = ["AdapterRegistry", "default_registry"]


def default_registry() -> AdapterRegistry:
    """Every adapter installed through the `portwright.adapters` entry points (ours included)."""
    registry = AdapterRegistry()
    registry.load_entry_points()
    return registry
