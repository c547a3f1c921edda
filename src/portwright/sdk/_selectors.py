"""Selector maps and the page helper that turns a missing selector into PageChangedError."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from parsel import Selector, SelectorList

from portwright.sdk._errors import PageChangedError

__all__ = ["Page", "SelectorMap"]


@dataclass(frozen=True)
class SelectorMap:
    """Named selectors (CSS, or XPath when prefixed `xpath:`) with a version number."""

    selectors: Mapping[str, str]
    version: int = 0

    def __getitem__(self, key: str) -> str:
        try:
            return self.selectors[key]
        except KeyError:
            raise KeyError(f"selector map has no key {key!r}") from None

    def merged(self, patch: Mapping[str, str], version: int) -> SelectorMap:
        return SelectorMap({**self.selectors, **patch}, version)


class Page:
    """An HTML page read through a selector map. Missing required parts raise PageChangedError."""

    def __init__(self, html: str, selectors: SelectorMap, *, url: str = "") -> None:
        self.html = html
        self.url = url
        self.map = selectors
        self._doc = Selector(text=html)

    def _select(self, key: str) -> SelectorList[Selector]:
        query = self.map[key]
        if query.startswith("xpath:"):
            return self._doc.xpath(query.removeprefix("xpath:"))
        return self._doc.css(query)

    def _changed(self, key: str, message: str) -> PageChangedError:
        """The error for a page that no longer matches `key`, with the page as evidence."""
        return PageChangedError(
            message,
            selector_key=key,
            selector=self.map[key],
            url=self.url,
            html=self.html,
            selector_version=self.map.version,
        )

    def all(self, key: str) -> SelectorList[Selector]:
        """Every match (possibly none)."""
        return self._select(key)

    def has(self, key: str) -> bool:
        return bool(self._select(key))

    def one(self, key: str) -> Selector:
        """The first match, or PageChangedError naming the selector, with the page as evidence."""
        found = self._select(key)
        if not found:
            raise self._changed(
                key,
                f"selector {key!r} ({self.map[key]}) matched nothing on {self.url or 'the page'}",
            )
        return found[0]

    def value(self, key: str) -> str:
        """The first match as a string (for `::attr(x)` / `::text` / XPath `@x` selectors);
        an empty value counts as missing."""
        found = self._select(key)
        value = (found.get() or "").strip() if found else ""
        if not value:
            raise self._changed(
                key,
                f"selector {key!r} ({self.map[key]}) found no value on {self.url or 'the page'}",
            )
        return value

    def values(self, key: str) -> list[str]:
        return [v.strip() for v in self._select(key).getall() if v and v.strip()]

    def text(self, key: str) -> str:
        return " ".join(t.strip() for t in self.one(key).css("::text").getall() if t.strip())

    def attr(self, key: str, name: str) -> str:
        value = self.one(key).attrib.get(name)
        if value is None:
            raise self._changed(key, f"selector {key!r} matched but has no attribute {name!r}")
        return value
