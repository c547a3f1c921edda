"""What an operator changed while holding a job's live browser: the page's form fields
read over CDP at take-over and at hand-back, and the difference between the two."""

from __future__ import annotations

from typing import Any

from portwright.console._views import mask
from portwright.engines.browser import CdpError, CdpSession, LiveTarget

__all__ = ["field_changes", "page_fields", "release_note"]

# The page's form fields by name (or id, or position) and their values as the page holds
# them (at most 200 fields, 200 characters each; a password field only says it is set).
FIELDS_JS = """(() => {
  const out = {};
  const skip = ['hidden', 'submit', 'button', 'image', 'reset', 'file'];
  const all = Array.from(document.querySelectorAll('input, select, textarea')).slice(0, 200);
  all.forEach((e, i) => {
    const type = (e.type || '').toLowerCase();
    if (skip.includes(type)) return;
    const key = e.name || e.id || ('field ' + (i + 1));
    let value;
    if (type === 'password') value = e.value ? '\u2022\u2022\u2022\u2022\u2022\u2022' : '';
    else if (type === 'radio') {
      if (!e.checked) { if (!(key in out)) out[key] = ''; return; }
      value = e.value;
    } else if (type === 'checkbox') value = e.checked ? (e.value || 'on') : '';
    else value = e.value;
    out[key] = String(value).slice(0, 200);
  });
  return out;
})()"""


async def page_fields(target: LiveTarget | None) -> dict[str, str] | None:
    """The live page's form fields (secret-looking names masked), or None when the page
    cannot be read (no page published, the browser gone)."""
    if target is None:
        return None
    try:
        async with CdpSession.attach(target, timeout_s=10.0) as cdp:
            answer = await cdp.send(
                "Runtime.evaluate",
                {"expression": FIELDS_JS, "returnByValue": True},
                timeout_s=10.0,
            )
    except (CdpError, OSError, TimeoutError):
        return None
    value = answer.get("result", {}).get("value")
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in mask(value).items()}


def field_changes(before: object, after: dict[str, str] | None) -> dict[str, list[str]]:
    """field → [before, after] for every field whose value differs (a field new since the
    take-over counts as changed from "")."""
    if after is None or not isinstance(before, dict):
        return {}
    return {
        key: [str(before.get(key, "")), value]
        for key, value in after.items()
        if str(before.get(key, "")) != value
    }


def release_note(
    control: dict[str, Any], fields: dict[str, str] | None, reason: str
) -> tuple[dict[str, Any], str]:
    """The hand-back event's meta (`changed`: field → [before, after]) and its reason
    naming the changes, from the take-over's note `control` and the page's `fields` now.
    Nothing is claimed when the page cannot be read now. When it could not be read at
    take-over (no page open yet), the filled fields it holds at hand-back are kept instead
    (`handed_back`): what the operator left, without a claim about what they changed."""
    if fields is None:
        return {}, reason
    if not isinstance(control.get("fields"), dict):
        filled = {k: v for k, v in fields.items() if v}
        if not filled:
            return {"handed_back": {}}, reason
        held = ", ".join(f"{k}: {v!r}" for k, v in filled.items())
        return {"handed_back": filled}, (
            f"{reason}; the page was not readable at take-over; at hand-back it held {held}"
        )
    changed = field_changes(control["fields"], fields)
    if not changed:
        return {"changed": {}}, f"{reason}; no form field changed"
    listed = ", ".join(f"{k}: {b or '∅'!r} → {a or '∅'!r}" for k, (b, a) in changed.items())
    return {"changed": changed}, f"{reason}; the operator changed {listed}"
