"""Extraction rules (CSS or XPath; text or an attribute; first match or all) over parsel."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping

from lxml import etree  # type: ignore[import-untyped]  # parsel's parser; no type information
from lxml import html as lxml_html
from parsel import Selector

from portwright.sdk import ExtractRule

_HTML_PARSER = lxml_html.HTMLParser  # parsel's parser class for HTML documents
_detect: Callable[[str], str] | None
try:  # parsel's own XML-or-HTML test (private: a parsel without it keeps its whole detection)
    from parsel.selector import _detect_xml_or_html as _detect
except ImportError:  # pragma: no cover - parsel 1.12 has it
    _detect = None


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


# What a JSON object or array may start with: parsel reads only those as JSON documents.
_JSON_START = re.compile(r"[ \t\n\r]*[\[{]")
_TITLE = "descendant-or-self::title/text()"  # parsel's translation of `title::text`
# A page that opens with nothing but a doctype and empty `html`/`head`/`meta`/`link`/`base`
# tags of plain attributes, then `<title>` with plain text and `</title>`: its title is
# that text, whatever follows (see `_plain_title`). Anything else is parsed.
_SPACE = "[ \t\n]"
_ATTRIBUTE = (
    f"{_SPACE}+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
    f"(?:{_SPACE}*={_SPACE}*(?:\"[^\"<>&]*\"|'[^'<>&]*'|[-a-zA-Z0-9_:./+,;%#!?@~*()]+))?"
)
_PLAIN_HEAD = re.compile(
    f"(?:<!doctype{_SPACE}+html"
    f'(?:{_SPACE}+public{_SPACE}+"[^"<>]*"(?:{_SPACE}+"[^"<>]*")?)?{_SPACE}*>)?'
    f"(?:{_SPACE}*<(?:html|head|meta|link|base)(?:{_ATTRIBUTE})*{_SPACE}*/?>)*"
    f"{_SPACE}*<title>"
    # plain text: no markup, entity, carriage return or control character, nothing lxml
    # could refuse or rewrite (surrogates, non-characters, planes past the first)
    "([\t\n\x20-\x25\x27-\x3b\x3d-\x7e\xa0-\ud7ff\ue000-\ufdcf\ufdf0-\ufffd]*)"
    "</title>",
    re.IGNORECASE | re.ASCII,  # tag names as ASCII: no other letter folds into one
)
_compiled = threading.local()  # an lxml XPath per thread: not one object shared by threads


def parse(html: str | Selector) -> Selector:
    """A parsed document (parse once, then extract, check and title from the same tree).

    parsel's type detection tries `json.loads` on every text first (an exception per
    HTML page); a text that cannot be a JSON object or array skips it and is typed as
    parsel would type it (XML with a declaration, else HTML)."""
    if isinstance(html, Selector):
        return html
    if _detect is None or _JSON_START.match(html):
        return Selector(text=html)
    kind = _detect(html)
    if kind != "html":
        return Selector(text=html, type=kind)
    return Selector(root=_html_root(html), type="html")


def _html_root(text: str) -> etree._Element:
    """The tree parsel's `Selector(text=…, type="html")` builds (its `create_root_node`,
    the same steps, over the same lxml parser class with the same options), from one
    parser per thread: parsel makes a new parser per page (reusing one took a 400-byte
    page's parse and title from ~27 to ~22 µs)."""
    parser = getattr(_compiled, "html_parser", None)
    if parser is None:
        parser = _compiled.html_parser = _HTML_PARSER(
            recover=True, encoding="utf-8", huge_tree=True
        )
    body = text.strip().replace("\x00", "").encode("utf-8") or b"<html/>"
    root = etree.fromstring(body, parser=parser)
    if root is None:
        root = etree.fromstring(b"<html/>", parser=parser)
    return root


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


def _plain_title(text: str) -> str | None:
    """The title of a page whose opening `_PLAIN_HEAD` matches, without parsing it; None
    for any other page (parse it). The tree lxml builds is built in document order, each
    node appended as its markup is read, so what follows `</title>` cannot change the
    first title element or its text; and before it, `_PLAIN_HEAD` admits no title, no
    raw-text element, comment or entity: the first `title` element's first text is that
    text as written (at least one character in it not blank)."""
    head = _PLAIN_HEAD.match(text)
    if head is None:
        return None
    title = head.group(1)
    return title.strip() if title.strip(" \t\n") else None


def title_of(html: str | Selector) -> str | None:
    """The page's title, as parsel's `css("title::text").get()` reads it, stripped. A page
    given as text whose head is plain (`_plain_title`) is not parsed for it."""
    if isinstance(html, str):
        plain = _plain_title(html)
        if plain is not None:
            return plain
    doc = parse(html)
    if doc.type in ("html", "xml"):  # `css("title::text").get()`, its XPath compiled once
        xpath = getattr(_compiled, "title", None)
        if xpath is None:
            xpath = _compiled.title = etree.XPath(_TITLE)
        found = xpath(doc.root)
        title = str(found[0]) if found else None
    else:  # a JSON document: parsel refuses CSS on it, as it always has
        title = doc.css("title::text").get()
    return title.strip() if title else None
