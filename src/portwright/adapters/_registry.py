"""The adapter registry: explicit registration plus the `portwright.adapters` entry points.

Several versions of one adapter can be registered at once (each class declares its
`version`; an entry point may carry it in its name, `name@version`, which must then
match). A job is pinned to the version it started on; which version new jobs start on
is the portal's rollout (`portwright.orchestrator.Rollouts`), else the default version:
the highest one not marked `candidate`.
"""

from __future__ import annotations

import re

from portwright.sdk import Adapter, UnknownAdapterError

__all__ = ["AdapterRegistry", "version_key"]

ENTRY_POINT_GROUP = "portwright.adapters"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")

AdapterClass = type[Adapter]  # type: ignore[type-arg]


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Sort key of a version string: numeric parts numerically ("10" after "9")."""
    parts = re.split(r"[.\-_]", version)
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in parts)


class AdapterRegistry:
    """Adapters by name, each with one or more versions."""

    def __init__(self) -> None:
        self._adapters: dict[str, dict[str, AdapterClass]] = {}
        self._defaults: dict[str, str] = {}  # name -> default version (asked per job read)

    def register(self, adapter: AdapterClass) -> AdapterClass:
        """Register an adapter class (usable as a decorator). Registering a version again
        replaces it; versions of one name must share the state machine's states (a job's
        state means the same whichever version runs it)."""
        for attr in ("name", "input_model", "machine"):
            if not hasattr(adapter, attr):
                raise TypeError(f"adapter {adapter.__qualname__} does not declare {attr!r}")
        version = str(adapter.version)
        if not _VERSION.match(version):
            raise TypeError(
                f"adapter {adapter.__qualname__}: version {version!r} must be 1-32 letters, "
                "digits, '.', '-' or '_'"
            )
        versions = self._adapters.setdefault(adapter.name, {})
        for other in versions.values():
            if other.version != version and set(other.machine.states) != set(
                adapter.machine.states
            ):
                raise TypeError(
                    f"adapter {adapter.name!r} version {version} declares other states than "
                    f"version {other.version}: versions of one adapter share their states"
                )
        versions[version] = adapter
        self._defaults.pop(adapter.name, None)
        return adapter

    def load_entry_points(self) -> list[str]:
        """Register every adapter advertised by installed packages; returns their names."""
        from portwright.plugins import ADAPTERS, PluginError, load_plugins

        loaded = []
        for entry, adapter in load_plugins(ENTRY_POINT_GROUP).items():
            if "@" in entry and entry.split("@", 1)[1] != str(adapter.version):
                raise PluginError(
                    f"plugin {entry!r} in entry-point group {ADAPTERS!r} names version "
                    f"{entry.split('@', 1)[1]!r} but its class declares {adapter.version!r}"
                )
            self.register(adapter)
            loaded.append(adapter.name)
        return loaded

    def get(self, name: str, version: str | None = None) -> AdapterClass:
        """The adapter `name` at `version`, or its default version."""
        versions = self._adapters.get(name)
        if not versions:
            raise UnknownAdapterError(name, self.names())
        if version is None:
            return versions[self.default_version(name)]
        try:
            return versions[version]
        except KeyError:
            raise UnknownAdapterError(f"{name}@{version}", self.names()) from None

    def has(self, name: str, version: str) -> bool:
        return version in self._adapters.get(name, {})

    def versions(self, name: str) -> list[str]:
        """The registered versions of `name`, oldest first."""
        return sorted(self._adapters.get(name, {}), key=version_key)

    def default_version(self, name: str) -> str:
        """The version new jobs start on when no rollout says otherwise: the highest one
        not marked `candidate` (or the highest one, if all are)."""
        known = self._defaults.get(name)
        if known is not None:
            return known
        versions = self._adapters[name]
        ordered = sorted(versions, key=version_key)
        stable = [v for v in ordered if not getattr(versions[v], "candidate", False)]
        self._defaults[name] = (stable or ordered)[-1]
        return self._defaults[name]

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def all(self) -> list[AdapterClass]:
        """Each adapter's default version, by name."""
        return [self.get(n) for n in self.names()]

    def all_versions(self) -> list[AdapterClass]:
        """Every registered version of every adapter, by name then version."""
        return [self._adapters[n][v] for n in self.names() for v in self.versions(n)]

    def __contains__(self, name: object) -> bool:
        return name in self._adapters
