"""Finding the system's Chromium the way a user's machine would, and how to launch it.

Playwright's own browser download is not used: Portwright drives the Chromium
the machine already has. Lookup order: an explicit path (a setting), the
`PORTWRIGHT_CHROMIUM` environment variable, then the search paths: well-known
install paths and `chromium`/`chromium-browser`/`google-chrome` on `PATH`.

Two environment variables steer it, so a user can also opt out of browsers:

- `PORTWRIGHT_CHROMIUM=none` (or an explicit path `none`): no browser at all;
  browser work is refused or skipped, HTTP work runs.
- `PORTWRIGHT_CHROMIUM_SEARCH`: the search paths, `os.pathsep`-separated, in
  place of the well-known ones and `PATH`; `none` (or empty) searches nowhere,
  so only an explicit path or `PORTWRIGHT_CHROMIUM` can name a browser.

`python -m portwright.engines._chromium` prints the path found (exit 0), or why
there is none (exit 1 not found, 3 opted out); the `run` script asks it, so the
decision has one source.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CHROMIUM_ARGS",
    "INSTALL_HINT",
    "ChromiumDisabledError",
    "ChromiumNotFoundError",
    "find_chromium",
]

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
ON_PATH = ("chromium", "chromium-browser", "google-chrome")
NONE = "none"  # PORTWRIGHT_CHROMIUM=none / PORTWRIGHT_CHROMIUM_SEARCH=none
INSTALL_HINT = (
    "install Chromium (Debian: apt-get install chromium) or set PORTWRIGHT_CHROMIUM to its path"
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
    """No Chromium executable was found; the message says where we looked and what to do."""


class ChromiumDisabledError(ChromiumNotFoundError):
    """Browsers were switched off on purpose (`PORTWRIGHT_CHROMIUM=none`)."""


def _search_paths(env: Mapping[str, str]) -> list[str]:
    search = env.get("PORTWRIGHT_CHROMIUM_SEARCH")
    if search is not None:
        if search.strip().lower() == NONE:
            return []
        return [p for p in search.split(os.pathsep) if p.strip()]
    found = [shutil.which(name) for name in ON_PATH]
    return [*KNOWN_PATHS, *(f for f in found if f)]


def find_chromium(
    explicit: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> str:
    """Return the path of a Chromium executable, or raise naming every place tried.

    `env` is the environment to read (default `os.environ`)."""
    env = os.environ if env is None else env
    candidates: list[str] = []
    chosen = [os.fspath(explicit)] if explicit else []
    if env.get("PORTWRIGHT_CHROMIUM"):
        chosen.append(env["PORTWRIGHT_CHROMIUM"])
    for value in chosen:
        if value.strip().lower() == NONE:
            raise ChromiumDisabledError(
                "browsers are switched off (PORTWRIGHT_CHROMIUM=none); to use them, unset it "
                "or set it to Chromium's path"
            )
        candidates.append(value)
    candidates.extend(_search_paths(env))
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    tried = ", ".join(dict.fromkeys(candidates)) or "nowhere: PORTWRIGHT_CHROMIUM_SEARCH=none"
    raise ChromiumNotFoundError(f"no Chromium executable found (tried: {tried}); {INSTALL_HINT}")


def main() -> int:
    """Print the Chromium found (exit 0) or why none (to stderr; exit 1, or 3 if opted out)."""
    try:
        print(find_chromium())
    except ChromiumDisabledError as exc:
        print(exc, file=sys.stderr)
        return 3
    except ChromiumNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
