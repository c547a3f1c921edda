"""Engines: how Portwright reaches a portal, and the fleet they draw on.

- `portwright.engines.http`: httpx clients for adapter steps; error translation.
- `portwright.engines.browser`: Playwright over Chromium (local or CDP), pools, evidence.
- `portwright.engines.ladder`: HTTP → TLS-impersonating HTTP → browser → hardened
  browser, with tier memory per site.
- `Fleet` (browsers, proxies, profiles, solvers, politeness, the ladder) for the
  runtime; `Politeness` per site; `translate_exception` / `classify_status`, the
  engines' edge onto the SDK's error tree; `find_chromium` (the machine's Chromium,
  `PORTWRIGHT_CHROMIUM`) and its errors.

Names are imported lazily so that `portwright.engines.http` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portwright.engines._chromium import (
        CHROMIUM_ARGS,
        INSTALL_HINT,
        ChromiumDisabledError,
        ChromiumNotFoundError,
        find_chromium,
    )
    from portwright.engines._errors import classify_status, translate_exception
    from portwright.engines._fleet import Fleet, FleetConfig, proxy_from_url
    from portwright.engines._politeness import Politeness, PolitenessRule

__all__ = [
    "CHROMIUM_ARGS",
    "INSTALL_HINT",
    "ChromiumDisabledError",
    "ChromiumNotFoundError",
    "Fleet",
    "FleetConfig",
    "Politeness",
    "PolitenessRule",
    "classify_status",
    "find_chromium",
    "proxy_from_url",
    "translate_exception",
]

_WHERE = {
    "CHROMIUM_ARGS": "_chromium",
    "INSTALL_HINT": "_chromium",
    "ChromiumDisabledError": "_chromium",
    "ChromiumNotFoundError": "_chromium",
    "find_chromium": "_chromium",
    "Fleet": "_fleet",
    "FleetConfig": "_fleet",
    "proxy_from_url": "_fleet",
    "Politeness": "_politeness",
    "PolitenessRule": "_politeness",
    "classify_status": "_errors",
    "translate_exception": "_errors",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'portwright.engines' has no attribute {name!r}")
    return getattr(importlib.import_module(f"portwright.engines.{module}"), name)
