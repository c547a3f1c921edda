"""Extraction rules (CSS or XPath, text or an attribute, first match or all) over parsel."""

from __future__ import annotations

from collections.abc import Mapping

from parsel import Selector
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ExtractRule", "extract", "title_of"]

Extracted = str | list[str] | None


class ExtractRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selector: str = Field(min_length=1, max_length=500)
    type: str = Field("css", pattern="^(css|xpath)$")
    attribute: str | None = None
    all: bool = False


def _value(node: Selector, attribute: str | None) -> str | None:
    if attribute:
        return node.attrib.get(attribute)
    if isinstance(node.root, str):
        return node.root.strip()
    texts = (t.strip() for t in node.xpath(".//text()").getall())
    return " ".join(t for t in texts if t)


def extract(html: str, rules: Mapping[str, ExtractRule]) -> dict[str, Extracted]:
    """Apply each named rule; a rule that matches nothing yields None (or [] with `all`)."""
    doc = Selector(text=html)
    out: dict[str, Extracted] = {}
    for name, rule in rules.items():
        nodes = doc.xpath(rule.selector) if rule.type == "xpath" else doc.css(rule.selector)
        values = [v for v in (_value(n, rule.attribute) for n in nodes) if v is not None]
        out[name] = values if rule.all else (values[0] if values else None)
    return out


def title_of(html: str) -> str | None:
    title = Selector(text=html).css("title::text").get()
    return title.strip() if title else None
