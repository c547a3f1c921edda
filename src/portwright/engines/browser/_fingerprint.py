"""Fingerprint profiles: locale, timezone, languages, viewport and user agent that agree.

A context's fingerprint follows its proxy's country (a German exit speaks
de-DE in Europe/Berlin) and stays the same for one job (chosen by a stable
hash of a seed such as the job id). The user agent is the real browser's,
with the headless marker removed, on the platform it really runs on: a
profile never claims to be a browser or an OS it is not.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from typing import TypedDict

__all__ = ["COUNTRIES", "ContextOptions", "Fingerprint", "fingerprint_for", "user_agent_for"]


class ContextOptions(TypedDict):
    """The keyword arguments a fingerprint contributes to `browser.new_context`."""

    locale: str
    timezone_id: str
    user_agent: str
    viewport: dict[str, int]
    extra_http_headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Country:
    locales: tuple[str, ...]
    timezones: tuple[str, ...]


COUNTRIES: dict[str, _Country] = {
    "US": _Country(("en-US",), ("America/New_York", "America/Chicago", "America/Los_Angeles")),
    "GB": _Country(("en-GB",), ("Europe/London",)),
    "DE": _Country(("de-DE",), ("Europe/Berlin",)),
    "FR": _Country(("fr-FR",), ("Europe/Paris",)),
    "ES": _Country(("es-ES",), ("Europe/Madrid",)),
    "IT": _Country(("it-IT",), ("Europe/Rome",)),
    "NL": _Country(("nl-NL",), ("Europe/Amsterdam",)),
    "CA": _Country(("en-CA", "fr-CA"), ("America/Toronto", "America/Vancouver")),
    "AU": _Country(("en-AU",), ("Australia/Sydney", "Australia/Melbourne")),
    "IN": _Country(("en-IN", "hi-IN"), ("Asia/Kolkata",)),
    "JP": _Country(("ja-JP",), ("Asia/Tokyo",)),
    "BR": _Country(("pt-BR",), ("America/Sao_Paulo",)),
}
_VIEWPORTS = ((1366, 768), (1440, 900), (1536, 864), (1600, 900), (1680, 1050), (1920, 1080))
_DEFAULT_COUNTRY = "US"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One consistent browser identity for a context."""

    country: str
    locale: str
    timezone_id: str
    viewport: tuple[int, int]
    user_agent: str

    @property
    def accept_language(self) -> str:
        primary = self.locale
        base = primary.split("-")[0]
        return f"{primary},{base};q=0.9" if base != primary else primary

    def context_options(self) -> ContextOptions:
        width, height = self.viewport
        return ContextOptions(
            locale=self.locale,
            timezone_id=self.timezone_id,
            user_agent=self.user_agent,
            viewport={"width": width, "height": height},
            extra_http_headers={"accept-language": self.accept_language},
        )


def user_agent_for(browser_version: str, *, system: str | None = None) -> str:
    """Chrome's user agent for `browser_version` on this machine's OS (no "Headless")."""
    major = browser_version.split(".", maxsplit=1)[0] or "120"
    system = system or platform.system()
    if system == "Darwin":
        os_part = "Macintosh; Intel Mac OS X 10_15_7"
    elif system == "Windows":
        os_part = "Windows NT 10.0; Win64; x64"
    else:
        os_part = "X11; Linux x86_64"
    return (
        f"Mozilla/5.0 ({os_part}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )


def _pick(options: tuple[str, ...] | tuple[tuple[int, int], ...], seed: str, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}|{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % len(options)


def fingerprint_for(country: str | None, *, seed: str, browser_version: str) -> Fingerprint:
    """The profile for a proxy in `country` (unknown: US), stable for one `seed`."""
    code = (country or _DEFAULT_COUNTRY).upper()
    spec = COUNTRIES.get(code) or COUNTRIES[_DEFAULT_COUNTRY]
    return Fingerprint(
        country=code,
        locale=spec.locales[_pick(spec.locales, seed, "locale")],
        timezone_id=spec.timezones[_pick(spec.timezones, seed, "tz")],
        viewport=_VIEWPORTS[_pick(_VIEWPORTS, seed, "viewport")],
        user_agent=user_agent_for(browser_version),
    )
