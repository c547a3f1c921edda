"""Templates and the page helper of the customer portal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from portwright.customers._auth import Customer

__all__ = ["PREFIX", "page"]

PREFIX = "/app"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _ts(value: float | None, seconds: bool = False) -> str:
    """A UTC time to the minute; `seconds`: to the second, for deadlines a minute or less
    away (a hold's one-time code)."""
    if not value:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


templates.env.filters["ts"] = _ts
templates.env.filters["pretty"] = _pretty


def page(
    request: Request,
    template: str,
    me: Customer | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a page; with `?fragment=1` only its live region (`live_template`)."""
    if request.query_params.get("fragment") and "live_template" in context:
        template = context["live_template"]
    return templates.TemplateResponse(
        request,
        template,
        {"me": me, "prefix": PREFIX, "nav": context.pop("nav", ""), **context},
        status_code=status_code,
        headers={"cache-control": "no-store"},
    )
