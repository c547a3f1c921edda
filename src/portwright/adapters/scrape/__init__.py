"""The scrape adapter: one URL through the engine ladder behind the SSRF guard, extracted."""

from portwright.adapters.scrape._adapter import ENGINES, ScrapeAdapter, ScrapeInput
from portwright.adapters.scrape._extract import ExtractRule, extract

__all__ = ["ENGINES", "ExtractRule", "ScrapeAdapter", "ScrapeInput", "extract"]
