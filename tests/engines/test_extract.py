"""Reading a fetched page: the parse, the title and the extraction rules read as parsel does."""

from __future__ import annotations

import pytest
from parsel import Selector

from portwright.engines.ladder import Rule, extract, title_of
from portwright.engines.ladder._extract import parse

DOCUMENTS = [
    "<!doctype html><html><head><title> A page </title></head><body><h1>x</h1></body></html>",
    "<html><title>a<b>c</b>d</title></html>",
    "<svg><title>inside svg</title></svg><title>outer</title>",
    "<html><head></head><body>no title</body></html>",
    "<title></title>",
    "\ufeff<title>after a BOM</title>",
    '<?xml version="1.0"?><rss><channel><title>a feed</title></channel></rss>',
    '  <?xml version="1.0"?><doc><title>spaced</title></doc>',
    '{"title": "a JSON object"}',
    ' \n [1, 2, "<title>no</title>"]',
    "[if IE]><title>not JSON</title>",
    "123",
    '"a JSON string"',
    "plain text",
    "",
    "   ",
]


def _parsel_title(text: str) -> object:
    """What title_of answered before: parsel's own CSS on parsel's own parse."""
    try:
        title = Selector(text=text).css("title::text").get()
    except ValueError as exc:
        return ValueError, str(exc)
    return title.strip() if title else None


@pytest.mark.parametrize("text", DOCUMENTS)
def test_parse_and_title_read_a_page_as_parsel_does(text: str) -> None:
    """A page is typed as parsel types it (JSON object or array, XML, HTML) and its title is
    parsel's `title::text`, stripped; a JSON document refuses CSS as it always did."""
    assert parse(text).type == Selector(text=text).type
    try:
        ours: object = title_of(text)
    except ValueError as exc:
        ours = ValueError, str(exc)
    assert ours == _parsel_title(text)
    if not isinstance(ours, tuple):
        assert title_of(parse(text)) == ours  # from a parsed tree, the same


def test_extraction_rules_read_the_parsed_tree_as_parsel_does() -> None:
    """CSS and XPath rules, text and attributes, first or all, over one parsed tree."""
    page = (
        "<html><head><title>T</title></head><body>"
        '<span class="p" data-v="1"> one </span><span class="p" data-v="2">two</span>'
        "</body></html>"
    )
    rules = {
        "first": Rule("span.p"),
        "all": Rule("span.p", all=True),
        "attr": Rule("span.p", attribute="data-v", all=True),
        "xpath": Rule("//span[@data-v='2']/text()", type="xpath"),
        "none": Rule("div.missing"),
    }
    expected = {
        "first": "one",
        "all": ["one", "two"],
        "attr": ["1", "2"],
        "xpath": "two",
        "none": None,
    }
    assert extract(page, rules) == expected
    assert extract(parse(page), rules) == expected
    assert title_of(parse(page)) == "T"
