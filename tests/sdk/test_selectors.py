"""Reading pages through selector maps; a missing selector is a page change with evidence."""

from __future__ import annotations

import pytest

from portwright.sdk import Page, PageChangedError, SelectorMap

HTML = """<html><body><form id="f"><input name="csrf" value="tok"></form>
<table id="slots"><tr class="slot" data-slot-id="s1"></tr><tr class="slot" data-slot-id="s2"></tr>
</table><p class="msg"> hi <b>there</b></p></body></html>"""


def test_values_by_css_and_xpath() -> None:
    """CSS `::attr` and XPath `@attr` selectors both yield values; patches bump the version."""
    sm = SelectorMap(
        {"csrf": "input[name=csrf]::attr(value)", "ids": "xpath://tr[@class='slot']/@data-slot-id"}
    )
    page = Page(HTML, sm, url="http://portal/x")
    assert page.value("csrf") == "tok"
    assert page.values("ids") == ["s1", "s2"]
    patched = sm.merged({"csrf": "form#f input::attr(value)"}, version=3)
    assert patched.version == 3
    assert Page(HTML, patched).value("csrf") == "tok"


def test_missing_selector_raises_page_changed_with_the_page_as_evidence() -> None:
    """A selector that matches nothing raises PageChangedError naming key, selector, URL, HTML."""
    page = Page(
        HTML, SelectorMap({"ref": "#confirmation::attr(data-reference)"}, 2), url="http://p/c"
    )
    with pytest.raises(PageChangedError) as caught:
        page.value("ref")
    err = caught.value
    assert err.selector_key == "ref"
    assert err.selector == "#confirmation::attr(data-reference)"
    assert err.url == "http://p/c"
    assert err.html == HTML
    assert err.details["selector_version"] == 2


def test_an_empty_value_counts_as_missing() -> None:
    """An input whose value a script would fill (empty in the HTML) is a page change, not ''."""
    page = Page('<input name="csrf" value="">', SelectorMap({"csrf": "input::attr(value)"}))
    with pytest.raises(PageChangedError, match="found no value"):
        page.value("csrf")
