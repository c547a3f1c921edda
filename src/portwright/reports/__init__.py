"""Reports for fan-out jobs: every item accounted for, as CSV, JSON or an HTML page."""

from portwright.reports._fanout import FanoutReport, ItemRow, build_report
from portwright.reports._render import to_csv, to_html, to_json

__all__ = ["FanoutReport", "ItemRow", "build_report", "to_csv", "to_html", "to_json"]
