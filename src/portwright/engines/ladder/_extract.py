"""Extraction rules (CSS or XPath; text or an attribute; first match or all) over parsel."""

from __future__ import annotations

from collections.abc import Mapping

from parsel import Selector

from portwright.sdk import ExtractRule

__all__ = ["ExtractRule", "Extracted", "Rule", "extract", "has_selector", "parse", "title_of"]

Extracted = str | list[str] | None
Rule = ExtractRule  # the short name engine code and tests use: the same class


def _value(node: Selector, attribute: str | None) -> str | None:
    if attribute:
        return node.attrib.get(attribute)
    if isinstance(node.root, str):
        return node.root.strip()
    texts = (t.strip() for t in node.xpath(".//text()").getall())
    return " ".join(t for t in texts if t)


def parse(html: str | Selector) -> Selector:
    """A parsed document (parse once, then extract, check and title from the same tree)."""
    return html if isinstance(html, Selector) else Selector(text=html)


def extract(html: str | Selector, rules: Mapping[str, ExtractRule]) -> dict[str, Extracted]:
    """Apply each named rule; a rule matching nothing yields None (or [] with `all`)."""
    doc = parse(html)
    out: dict[str, Extracted] = {}
    for name, rule in rules.items():
        nodes = doc.xpath(rule.selector) if rule.type == "xpath" else doc.css(rule.selector)
        values = [v for v in (_value(n, rule.attribute) for n in nodes) if v is not None]
        out[name] = values if rule.all else (values[0] if values else None)
    return out


def has_selector(html: str | Selector, css: str) -> bool | None:
    """Whether `css` matches in `html`; None when it is not plain CSS (a browser must judge)."""
    try:
        return bool(parse(html).css(css))
    except Exception:  # noqa: BLE001 - cssselect raises several types for non-CSS syntax
        return None


def title_of(html: str | Selector) -> str | None:
    title = parse(html).css("title::text").get()
    return title.strip() if title else None
