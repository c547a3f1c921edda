"""Finding the system's Chromium the way a user's machine would, and how to launch it.

Playwright's own browser download is not used: Portwright drives the Chromium
the machine already has. Lookup order: an explicit path (a setting), the
`PORTWRIGHT_CHROMIUM` environment variable, then well-known install paths.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["CHROMIUM_ARGS", "ChromiumNotFoundError", "find_chromium"]

KNOWN_PATHS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/lib/chromium/chromium",
    "/snap/bin/chromium",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)

# Headless in a container as root, with no calls home (the network here is closed).
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


class ChromiumNotFoundError(RuntimeError):
    """No Chromium executable was found; the message says where we looked."""


def find_chromium(explicit: str | os.PathLike[str] | None = None) -> str:
    """Return the path of a Chromium executable, or raise naming every place tried."""
    candidates: list[str] = []
    if explicit:
        candidates.append(os.fspath(explicit))
    env = os.environ.get("PORTWRIGHT_CHROMIUM")
    if env:
        candidates.append(env)
    candidates.extend(KNOWN_PATHS)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    tried = ", ".join(dict.fromkeys(candidates))
    raise ChromiumNotFoundError(
        f"no Chromium executable found (tried: {tried}); install Chromium "
        "(Debian: apt-get install chromium) or set PORTWRIGHT_CHROMIUM"
    )
