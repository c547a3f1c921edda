"""A page's title read without parsing it when its head is plain (`_extract._plain_title`):
the same title parsel reads, for every page the shortcut answers; any other page parsed as
before; and the ladder parses a fetched page only when a check or a rule needs its tree."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from parsel import Selector

from portwright.engines.ladder import (
    Ladder,
    LadderConfig,
    MemoryTierMemory,
    Rule,
    _climb,
    _extract,
    _ladder,
    title_of,
)
from portwright.engines.ladder._extract import _plain_title, parse
from portwright.sandbox import SandboxWorld, scrape


def _parsel_title(text: str) -> str | None:
    title = Selector(text=text).css("title::text").get()
    return title.strip() if title else None


PLAIN = [
    "<title>x</title>",
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A page</title>',
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<html xmlns=\'http://www.w3.org/'
    '1999/xhtml\'>\n<head>\n\t<meta name=viewport content="width=device-width" />\n'
    '<link rel=icon href=/f.ico><base href="http://x/"><TITLE>  Spaced\n out </TITLE></head>',
    '<html><head><meta charset="iso-8859-1"><title>café ü — 日本語</title><!-- later',
    "<title>\xa0only a no-break space\xa0</title><title>second</title>",
    "<title>a > b</title><script>",
    " \n<title>leading blanks</title>",
]
PARSED = [
    "<title></title><title>the second</title>",
    "<title> \t\n</title><title>blank first</title>",
    "<title>a &amp; b</title>",
    "<title>a<b>c</b></title>",
    "<title>a\r\nb</title>",
    "<title>a\x01b</title>",
    "<title>emoji 😀</title>",
    "<title>x</title >",
    "<!-- <title>in a comment</title> --><title>real</title>",
    "<script>t='<title>no</title>'</script><title>after a script</title>",
    "<head><style>title{}</style><title>after a style</title>",
    "<body><textarea><title>in a textarea</title></textarea>",
    "\xa0<title>a leading no-break space</title>",
    "\ufeff<title>after a BOM</title>",
    "\x00<title>a NUL</title>",
    '<?xml version="1.0"?><doc><title>xml</title></doc>',
    "<meta content='a&b'><title>an entity in an attribute</title>",
    "<t\u0131tle>dotless i</t\u0131tle><title>ascii</title>",
    "<p>text first</p><title>late</title>",
]


@pytest.mark.parametrize("text", PLAIN)
def test_a_plain_head_is_read_without_a_parse(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The title of a page with a plain head is the one parsel reads, and no tree is built."""
    expected = _parsel_title(text)
    monkeypatch.setattr(_extract, "_html_root", _refuse)
    assert _plain_title(text) == expected
    assert title_of(text) == expected


@pytest.mark.parametrize("text", PARSED)
def test_any_other_page_is_parsed_for_its_title(text: str) -> None:
    """A head the shortcut cannot vouch for (comments, raw text, entities, markup or odd
    characters in the title, an empty title, text before the head) is parsed, as before."""
    assert _plain_title(text) is None
    assert title_of(text) == _parsel_title(text)


def test_generated_pages_read_the_same_title_either_way() -> None:
    """Thousands of pages built from plain and unplain pieces: wherever the shortcut answers,
    its answer is parsel's (and it answers for some of them)."""
    rng = random.Random(14)
    heads = [
        "<!doctype html>", "<html>", "<html lang=\"en\" dir = rtl>", "<head>", "<head/>",
        "<meta charset=\"utf-8\">", "<meta charset=windows-1252>", " ", "\n", "\t",
        "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"/>",
        "<link rel=stylesheet href=/a.css>", "<meta name=a content='x > y'>",
        "<!-- c -->", "<script>x='<title>no</title>'</script>", "<p>", "<body>", "x", "\r",
        "<noscript>", "<xmp>", "<svg>", "<template>", "<title></title>", "&amp;",
    ]  # fmt: skip
    texts = [
        "Plain", " spaced ", "café", "a > b", "a\nb", "a\rb", "", "   ", "\xa0", "a&amp;b",
        "a<b>c</b>", "x\x01y", "\u2028x", "日本語", "😀", "a\x85b", "\ufeffx", "\u3000y",
    ]  # fmt: skip
    ends = ["</title>", "</TITLE>", "</title >", "</title", ""]
    after = ["", "</head><body><title>second</title></body>", "<title>second</title>", "<!--"]
    answered = 0
    for _ in range(4000):
        head = "".join(rng.choice(heads) for _ in range(rng.randint(0, 4)))
        title = "".join(rng.choice(texts) for _ in range(rng.randint(0, 3)))
        text = head + rng.choice(["<title>", "<Title>"]) + title + rng.choice(ends)
        text += rng.choice(after)
        plain = _plain_title(text)
        if plain is not None:
            answered += 1
            assert plain == _parsel_title(text), text
        assert title_of(text) == _parsel_title(text), text
    assert answered > 100  # the shortcut was taken: this compared something


def _refuse(text: str) -> Any:
    raise AssertionError("parsed")


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld(scrape.specs(), seed=5) as w:
        yield w


async def test_the_ladder_parses_a_page_only_when_it_must(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fetch asking for no content check and no rule is not parsed (its title read from the
    plain head); one with rules, or waiting for a selector, is parsed exactly once; the
    results are the same as from a parsed tree."""
    parses: list[int] = []

    def counting(html: Any) -> Selector:
        if not isinstance(html, Selector):
            parses.append(1)
        return parse(html)

    for module in (_ladder, _climb):
        monkeypatch.setattr(module, "parse", counting)
    monkeypatch.setattr(_extract, "parse", counting)
    url = f"{world.url('scrape-static')}/product/7"
    rules = {"title": Rule("h1.title"), "price": Rule("span.price", attribute="data-amount")}
    config = LadderConfig(timeout_s=10.0)
    async with Ladder(memory=MemoryTierMemory(), config=config) as ladder:
        bare = await ladder.fetch(url, engine="http")
        assert parses == []
        assert bare.title
        assert bare.title == _parsel_title(bare.html)
        ruled = await ladder.fetch(url, engine="http", extract=rules)
        assert len(parses) == 1
        assert ruled.title == bare.title
        assert ruled.extracted["title"] == Selector(text=ruled.html).css("h1.title::text").get()
        assert ruled.extracted["price"]
        waited = await ladder.fetch(url, engine="http", wait_for="h1.title")
        assert len(parses) == 2
        assert waited.title == bare.title
        assert waited.rung == "http"
