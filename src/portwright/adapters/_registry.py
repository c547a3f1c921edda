"""The adapter registry: explicit registration plus the `portwright.adapters` entry points."""

from __future__ import annotations

from portwright.sdk import Adapter, UnknownAdapterError

__all__ = ["AdapterRegistry"]

ENTRY_POINT_GROUP = "portwright.adapters"


class AdapterRegistry:
    """Adapters by name. One version per name is active in a process."""

    def __init__(self) -> None:
        self._adapters: dict[str, type[Adapter]] = {}  # type: ignore[type-arg]

    def register(self, adapter: type[Adapter]) -> type[Adapter]:  # type: ignore[type-arg]
        """Register an adapter class (usable as a decorator)."""
        for attr in ("name", "input_model", "machine"):
            if not hasattr(adapter, attr):
                raise TypeError(f"adapter {adapter.__qualname__} does not declare {attr!r}")
        self._adapters[adapter.name] = adapter
        return adapter

    def load_entry_points(self) -> list[str]:
        """Register every adapter advertised by installed packages; returns their names."""
        from portwright.plugins import load_plugins  # PluginError naming a broken one

        loaded = []
        for adapter in load_plugins(ENTRY_POINT_GROUP).values():
            self.register(adapter)
            loaded.append(adapter.name)
        return loaded

    def get(self, name: str) -> type[Adapter]:  # type: ignore[type-arg]
        try:
            return self._adapters[name]
        except KeyError:
            raise UnknownAdapterError(name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def all(self) -> list[type[Adapter]]:  # type: ignore[type-arg]
        return [self._adapters[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._adapters
