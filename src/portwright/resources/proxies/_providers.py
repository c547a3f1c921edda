"""Where proxies come from: a static list, or a rotating gateway that mints session identities.

A provider offers its current identities (`proxies()`) and, when one is
burned, may mint a replacement (`replace()`): a static list cannot (None), a
rotating gateway can, by opening a new session on the same endpoint, up to
`max_sessions` per slot so that an exhausted pool is reachable, not a loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from portwright.resources.proxies._model import Proxy

__all__ = ["ProxyProvider", "RotatingGateway", "StaticProxyList"]


class ProxyProvider(Protocol):
    """A source of proxy identities (one circuit breaker each in the pool)."""

    @property
    def name(self) -> str: ...

    def proxies(self) -> Sequence[Proxy]:
        """The identities on offer now."""
        ...

    def replace(self, burned: Proxy) -> Proxy | None:
        """A fresh identity in place of a burned one, or None when this provider has none."""
        ...


class StaticProxyList:
    """A fixed list of proxies (e.g. bought datacenter IPs, or the sandbox's proxies)."""

    def __init__(self, name: str, proxies: Iterable[Proxy]) -> None:
        self._name = name
        self._proxies = tuple(proxies)
        names = [p.name for p in self._proxies]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate proxy names in provider {name!r}")

    @property
    def name(self) -> str:
        return self._name

    @classmethod
    def from_catalog(cls, name: str, catalog: Iterable[Mapping[str, str]]) -> StaticProxyList:
        """From rows with name, url, tier, country (and optional username, password)."""
        return cls(
            name,
            (
                Proxy(
                    name=row["name"],
                    server=row["url"],
                    tier=row["tier"],
                    country=row["country"],
                    provider=name,
                    username=row.get("username"),
                    password=row.get("password"),
                )
                for row in catalog
            ),
        )

    def proxies(self) -> Sequence[Proxy]:
        return self._proxies

    def replace(self, burned: Proxy) -> Proxy | None:
        return None


class RotatingGateway:
    """One endpoint; the identity is chosen by the username (country and session parameters).

    `username_template` is formatted with `user`, `country` (lower case) and
    `session`, e.g. the common "{user}-country-{country}-session-{session}".
    The gateway exposes `slots` concurrent sessions per country; burning one
    starts a new session in its slot, at most `max_sessions` times per slot.
    """

    def __init__(
        self,
        name: str,
        server: str,
        *,
        user: str,
        password: str,
        tier: str,
        countries: Sequence[str],
        slots: int = 4,
        max_sessions: int = 20,
        username_template: str = "{user}-country-{country}-session-{session}",
    ) -> None:
        if slots < 1 or max_sessions < 1:
            raise ValueError("a gateway needs at least one slot and one session per slot")
        self._name = name
        self.server = server
        self._user = user
        self._password = password
        self.tier = tier
        self.countries = tuple(c.upper() for c in countries)
        self.slots = slots
        self.max_sessions = max_sessions
        self.template = username_template
        self._lock = threading.Lock()
        self._generation: dict[tuple[str, int], int] = {}

    @property
    def name(self) -> str:
        return self._name

    def _identity(self, country: str, slot: int, generation: int) -> Proxy:
        session = f"{slot}x{generation}"
        username = self.template.format(user=self._user, country=country.lower(), session=session)
        return Proxy(
            name=f"{self._name}:{country}:{session}",
            server=self.server,
            tier=self.tier,
            country=country,
            provider=self._name,
            username=username,
            password=self._password,
        )

    def proxies(self) -> Sequence[Proxy]:
        with self._lock:
            return [
                self._identity(country, slot, self._generation.get((country, slot), 0))
                for country in self.countries
                for slot in range(self.slots)
            ]

    def replace(self, burned: Proxy) -> Proxy | None:
        try:
            _, country, session = burned.name.rsplit(":", 2)
            slot_text, generation_text = session.split("x")
            slot, generation = int(slot_text), int(generation_text)
        except ValueError:
            return None
        with self._lock:
            current = self._generation.get((country, slot), 0)
            if generation != current:  # already replaced by another caller
                return self._identity(country, slot, current)
            if current + 1 >= self.max_sessions:
                return None
            self._generation[(country, slot)] = current + 1
            return self._identity(country, slot, current + 1)
