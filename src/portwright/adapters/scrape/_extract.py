"""Extraction rules as the scrape API takes them (CSS or XPath, text or an attribute, first
match or all); the engines' extractor applies them (`portwright.engines.ladder.extract`)."""

from __future__ import annotations

from portwright.engines.ladder import extract, title_of
from portwright.sdk import ExtractRule

__all__ = ["ExtractRule", "extract", "title_of"]
