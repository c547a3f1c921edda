"""Extraction rules as the scrape API takes them (CSS or XPath, text or an attribute, first
match or all); the engines' extractor applies them (`portwright.engines.ladder.extract`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from portwright.engines.ladder import extract, title_of

__all__ = ["ExtractRule", "extract", "title_of"]


class ExtractRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selector: str = Field(min_length=1, max_length=500)
    type: str = Field("css", pattern="^(css|xpath)$")
    attribute: str | None = None
    all: bool = False
