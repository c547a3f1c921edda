"""Templates and the page helper every route uses."""

from __future__ import annotations

import json
import time
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from portwright.console._auth import Operator

__all__ = ["PREFIX", "next_query", "page", "templates"]

PREFIX = "/console"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


# The display zone of the page being rendered (set by `page` around the render: macros
# imported into a template do not see its context).
_ZONE: ContextVar[tzinfo] = ContextVar("display_tz", default=UTC)


def _ts(value: float | None) -> str:
    """A time in the console's display zone (`display_timezone`, UTC by default), with
    the zone's name."""
    if not value:
        return "—"
    return datetime.fromtimestamp(value, _ZONE.get()).strftime("%Y-%m-%d %H:%M:%S %Z")


def next_query(filters: dict[str, str], cursor: object) -> str | None:
    """A list's next page (the pager every list shows, `pager` in `_macros.html`): the
    query string with the same filters and the cursor, or None on the last page."""
    if cursor is None:
        return None
    return urlencode({**{k: v for k, v in filters.items() if v}, "cursor": cursor})


def display_zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _ago(value: float | None) -> str:
    if not value:
        return "—"
    seconds = max(0, int(time.time() - value))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m ago"


def _duration(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f}s"
    return f"{int(value // 60)}m {int(value % 60)}s"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _short(key: str, value: Any, width: int = 32) -> str:
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and key.endswith(("_at", "_until", "_since"))
    ):
        return _ts(value)  # a timestamp: shown as a time in the display zone
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _change(before: Any, after: Any, most: int = 3) -> str:
    """An audit row's change on one line: `key: before → after` for each key of `after`
    whose value differs (the first `most`, then how many more); keys only `before` has are
    context (the job of an escalation), not changes, unless there is no `after` at all."""
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return "—"
        return f"{_short('', before) if before is not None else '∅'} → {_short('', after)}"
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    parts = []
    if not new:
        parts = [f"{key}: {_short(key, value)} → ∅" for key, value in old.items()]
    for key, value in new.items():
        if key not in old:
            parts.append(f"{key}: {_short(key, value)}")
        elif old[key] != value:
            parts.append(f"{key}: {_short(key, old[key])} → {_short(key, value)}")
    if not parts:
        return "no change"
    more = len(parts) - most
    return " · ".join(parts[:most]) + (f" · +{more} more" if more > 0 else "")


templates.env.filters["ts"] = _ts
templates.env.filters["change"] = _change
templates.env.filters["ago"] = _ago
templates.env.filters["duration"] = _duration
templates.env.filters["pretty"] = _pretty


def page(
    request: Request,
    template: str,
    op: Operator | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a page; with `?fragment=1` only its live region (the `live` block's include)."""
    if request.query_params.get("fragment") and "live_template" in context:
        template = context["live_template"]
    token = _ZONE.set(getattr(request.app.state, "display_tz", None) or UTC)
    try:  # the response renders the template here, in this context
        return templates.TemplateResponse(
            request,
            template,
            {"op": op, "prefix": PREFIX, "nav": context.pop("nav", ""), **context},
            status_code=status_code,
            headers={"cache-control": "no-store"},
        )
    finally:
        _ZONE.reset(token)
