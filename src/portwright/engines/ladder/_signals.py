"""Reading a fetched page for what the ladder acts on: a challenge form, or too little content.

A challenge is any element carrying a `data-sitekey` (the attribute common
captcha widgets use) inside a form; the form's action, method, hidden fields
and the field the answer goes into are what an engine needs to submit it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin

from parsel import Selector

from portwright.engines.ladder._extract import ExtractRule, extract, has_selector, parse

__all__ = ["ChallengeForm", "find_challenge", "unrendered"]

# Where common widgets expect the token, before falling back to a visible text field.
_ANSWER_FIELDS = ("g-recaptcha-response", "h-captcha-response", "cf-turnstile-response")


@dataclass(frozen=True, slots=True)
class ChallengeForm:
    """A captcha on a page, and how to submit its answer."""

    sitekey: str
    action: str
    method: str
    answer_field: str
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def answer_selector(self) -> str:
        return f'form [name="{self.answer_field}"]'


def find_challenge(html: str, url: str) -> ChallengeForm | None:
    """The captcha form on the page, or None (also None when it has no answer field)."""
    doc = Selector(text=html)
    holder = doc.css("[data-sitekey]")
    if not holder:
        return None
    sitekey = holder[0].attrib.get("data-sitekey", "")
    forms = doc.xpath("//form[.//*[@data-sitekey]]")
    if not sitekey or not forms:
        return None
    form = forms[0]
    answer = next(
        (name for name in _ANSWER_FIELDS if form.css(f'[name="{name}"]')),
        None,
    )
    if answer is None:
        text_fields = holder[0].css("input[type=text][name], textarea[name]") or form.css(
            "input[type=text][name], textarea[name]"
        )
        answer = text_fields[0].attrib["name"] if text_fields else None
    if answer is None:
        return None
    hidden = {
        node.attrib["name"]: node.attrib.get("value", "")
        for node in form.css("input[type=hidden][name]")
    }
    return ChallengeForm(
        sitekey=sitekey,
        action=urljoin(url, form.attrib.get("action") or url),
        method=(form.attrib.get("method") or "post").upper(),
        answer_field=answer,
        fields=hidden,
    )


def unrendered(
    html: str | Selector, *, wait_for: str | None, rules: Mapping[str, ExtractRule] | None
) -> str | None:
    """Why a page fetched without a browser lacks what was asked for (None: it has it)."""
    if not wait_for and not rules:
        return None
    html = parse(html)
    if wait_for:
        present = has_selector(html, wait_for)
        if present is None:
            return f"cannot check {wait_for!r} without a browser"
        if not present:
            return f"{wait_for!r} not in the page"
    if rules:
        values = extract(html, rules).values()
        if not any(values):
            return "no extraction rule matched"
    return None
