"""Hundreds of simulated business directories on one server, for directory submission.

Service "directories" hosts every directory of `directories.json` under
``/d/{slug}/`` and serves the data file itself at ``/directories.json``. Each
directory names its inputs its own way, has one or two form steps, maybe a
captcha, maybe a 5xx rate or a permanent outage, and refuses a business it
already lists (same normalised name and phone) with ``.error.duplicate`` and
no second ledger entry. Ledger kind "listing", key ``"{slug}:{business_key}"``.

Options: ``error_scale`` (1.0) multiplies every directory's 5xx rate;
``outages`` ({slug: "down" | "gone" | "up"}) overrides a directory's outage.
"""

from __future__ import annotations

from portwright.sandbox._world import ServiceSpec
from portwright.sandbox.directories._app import build_directories
from portwright.sandbox.directories._catalog import (
    DATA_FILE,
    PROFILE_KEYS,
    Catalog,
    DirectoryRecord,
    FieldMap,
    FormStep,
    SandboxBehaviour,
    business_key,
    load_catalog,
)

__all__ = [
    "DATA_FILE",
    "PROFILE_KEYS",
    "Catalog",
    "DirectoryRecord",
    "FieldMap",
    "FormStep",
    "SandboxBehaviour",
    "build_directories",
    "business_key",
    "load_catalog",
    "specs",
]


def specs() -> list[ServiceSpec]:
    """The directories service of a default world."""
    return [
        ServiceSpec("directories", build_directories, options={"error_scale": 1.0, "outages": {}})
    ]
