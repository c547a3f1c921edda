"""Fan-out reports as CSV, JSON and a readable HTML page with a chart."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from portwright.reports._fanout import FanoutReport, ItemRow

__all__ = ["to_csv", "to_html", "to_json"]

COLUMNS = (
    "item",
    "status",
    "state",
    "reason",
    "attempts",
    "retries",
    "result",
    "started",
    "finished",
    "duration_s",
    "job_id",
)
COLOURS = {"succeeded": "#2f8f46", "failed": "#c0392b", "cancelled": "#7f8c8d",
           "running": "#2f6fb3", "queued": "#b0b7c0", "waiting": "#d68910"}  # fmt: skip


def _iso(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def to_csv(report: FanoutReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in report.items:
        writer.writerow([r.item, r.status, r.state, r.reason, r.attempts, r.retries,
                         json.dumps(r.result, sort_keys=True), _iso(r.started_at),
                         _iso(r.finished_at), r.duration_s, r.job_id])  # fmt: skip
    return out.getvalue()


def _summary(report: FanoutReport) -> dict[str, Any]:
    return {
        "job_id": report.job_id,
        "adapter": report.adapter,
        "state": report.state,
        "counts": report.counts,
        "retries": report.retries,
        "time_to_complete_s": report.time_to_complete_s,
        "failure_reasons": report.failure_reasons,
        "created": _iso(report.created_at),
        "finished": _iso(report.finished_at),
    }


def _item(r: ItemRow) -> dict[str, Any]:
    return {
        "item": r.item,
        "status": r.status,
        "state": r.state,
        "reason": r.reason,
        "attempts": r.attempts,
        "retries": r.retries,
        "result": r.result,
        "started": _iso(r.started_at),
        "finished": _iso(r.finished_at),
        "duration_s": r.duration_s,
        "job_id": r.job_id,
    }


def to_json(report: FanoutReport) -> str:
    body = {
        **_summary(report),
        "items": [_item(r) for r in report.items],
        "key_events": [{**e, "at": _iso(e["at"])} for e in report.key_events],
    }
    return json.dumps(body, indent=2)


_ENV = Environment(
    loader=PackageLoader("portwright.reports", "."), autoescape=True, undefined=StrictUndefined
)


def _bars(counts: dict[str, int]) -> list[dict[str, Any]]:
    total = max(1, counts.get("total", 0))
    x = 0.0
    bars = []
    for status, n in counts.items():
        if status == "total" or n == 0:
            continue
        width = 600 * n / total
        colour = COLOURS.get(status, "#999")
        bars.append(
            {"status": status, "n": n, "x": round(x, 1), "width": round(width, 1), "colour": colour}
        )
        x += width
    return bars


def to_html(report: FanoutReport) -> str:
    """A self-contained page: summary cards, an SVG bar of outcomes, reasons, events, items."""
    summary = _summary(report)
    events = [{**e, "at": _iso(e["at"])} for e in report.key_events]
    return _ENV.get_template("report.html").render(
        s=summary, bars=_bars(summary["counts"]), events=events, items=report.items
    )
