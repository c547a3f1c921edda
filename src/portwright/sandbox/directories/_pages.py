"""HTML of the directory sites: form steps, the listing page, error pages."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from portwright.sandbox.directories._catalog import DirectoryRecord, FieldMap

__all__ = ["FORM_ATTRS", "form_page", "listing_page", "message_page"]

# form selector used in the data file -> the attributes that make it match
FORM_ATTRS: dict[str, str] = {
    "form#add-listing": 'id="add-listing"',
    "form#submit-business": 'id="submit-business"',
    "form#biz-form": 'id="biz-form" class="form"',
    "form.listing-form": 'class="listing-form wide"',
    "form.add-business": 'class="card add-business"',
    "form[name=listing]": 'name="listing"',
}

_LABELS: dict[str, str] = {
    "name": "Business name",
    "address": "Address",
    "address.street": "Street",
    "address.city": "City",
    "address.postcode": "Postal code",
    "address.country": "Country",
    "phone": "Phone",
    "website": "Website",
    "category": "Category",
    "hours": "Opening hours",
    "logo_url": "Logo URL",
    "tagline": "Tagline",
}


def _layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _control(field: FieldMap, value: str) -> str:
    name = escape(field.input)
    req = " required" if field.required else ""
    label = f"<label for='f-{name}'>{escape(_LABELS.get(field.profile, field.profile))}</label>"
    if field.profile == "hours":
        ctl = f"<textarea id='f-{name}' name='{name}'{req}>{escape(value)}</textarea>"
    else:
        kind = {"phone": "tel", "website": "url", "logo_url": "url"}.get(field.profile, "text")
        ctl = f"<input id='f-{name}' type='{kind}' name='{name}' value='{escape(value)}'{req}>"
    return f"<div class='field'>{label}{ctl}</div>"


def form_page(
    record: DirectoryRecord,
    step: int,
    *,
    hidden: Mapping[str, str],
    captcha_html: str = "",
    error: tuple[str, str] | None = None,
    values: Mapping[str, str] | None = None,
) -> str:
    """Step `step` (0-based) of a directory's form; `error` is (css class, message)."""
    spec = record.steps[step]
    values = values or {}
    notice = ""
    if error is not None:
        notice = f"<p class='error {escape(error[0])}'>{escape(error[1])}</p>"
    hidden_html = "".join(
        f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in hidden.items()
    )
    controls = "".join(_control(f, values.get(f.input, "")) for f in spec.fields)
    of = f" <small>step {step + 1} of {len(record.steps)}</small>" if len(record.steps) > 1 else ""
    body = (
        f"<h1>{escape(record.name)}</h1><h2>Add your business{of}</h2>{notice}"
        f"<form method='post' action='{escape(spec.action)}' {FORM_ATTRS[spec.form]}>"
        f"{hidden_html}{controls}{captcha_html}"
        "<button type='submit'>"
        f"{'Submit listing' if step + 1 == len(record.steps) else 'Continue'}</button></form>"
    )
    return _layout(f"{record.name} - add your business", body)


def listing_page(record: DirectoryRecord, listing_id: str, values: Mapping[str, str]) -> str:
    """The page answered to an accepted submission."""
    rows = "".join(
        f"<dt>{escape(_LABELS.get(f.profile, f.profile))}</dt>"
        f"<dd data-field='{escape(f.input)}'>{escape(values.get(f.input, ''))}</dd>"
        for f in record.fields()
        if values.get(f.input)
    )
    body = (
        f"<h1>{escape(record.name)}</h1><p class='notice success'>Thank you! Your listing is live."
        f"</p><section id='listing' data-listing-id='{escape(listing_id)}'><dl>{rows}</dl>"
        "</section>"
    )
    return _layout(f"{record.name} - listing {listing_id}", body)


def message_page(title: str, css_class: str, message: str) -> str:
    """A bare page with one `.error.<css_class>` (or other) message."""
    body = f"<h1>{escape(title)}</h1><p class='{escape(css_class)}'>{escape(message)}</p>"
    return _layout(title, body)
