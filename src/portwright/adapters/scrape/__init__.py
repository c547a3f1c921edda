"""The scrape adapter: one URL, fetched behind the SSRF guard, with extraction rules."""

from portwright.adapters.scrape._adapter import ScrapeAdapter, ScrapeInput
from portwright.adapters.scrape._extract import ExtractRule, extract

__all__ = ["ExtractRule", "ScrapeAdapter", "ScrapeInput", "extract"]
