"""Reading a fetched page: the parse, the title and the extraction rules read as parsel does."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from lxml import etree  # type: ignore[import-untyped]
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


HTML_TREES = [
    *[d for d in DOCUMENTS if Selector(text=d).type == "html"],
    "\x00<title>a\x00b</title>",
    "  \n<p>unclosed <b>tags",
    "<html>" + "<div class='x'>é</div>" * 5000 + "</html>",
    "<script>var a = '</title>';</script><title>after a script</title>",
]


@pytest.mark.parametrize("text", HTML_TREES)
def test_an_html_page_parses_to_parsels_own_tree(text: str) -> None:
    """`parse` builds an HTML page's tree with one lxml parser per thread, where parsel
    makes one per page: the tree, its type and what selectors read are parsel's."""
    ours, theirs = parse(text), Selector(text=text, type="html")
    assert ours.type == theirs.type == "html"
    assert etree.tostring(ours.root) == etree.tostring(theirs.root)
    assert ours.css("*").getall() == theirs.css("*").getall()
    assert ours.xpath("//text()").getall() == theirs.xpath("//text()").getall()


def test_pages_parsed_on_many_threads_at_once_keep_their_own_trees() -> None:
    """Each thread has its own parser: pages parsed at once on several threads (a worker's
    `to_thread` calls) each get their own tree."""
    pages = [
        f"<html><head><title>page {i}</title></head><body>{'x' * i}</body></html>"
        for i in range(200)
    ]
    barrier = threading.Barrier(4)

    def work(offset: int) -> list[str | None]:
        barrier.wait()
        return [title_of(parse(pages[(i + offset) % 200])) for i in range(200)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    for offset, titles in enumerate(results):
        assert titles == [f"page {(i + offset) % 200}" for i in range(200)]
