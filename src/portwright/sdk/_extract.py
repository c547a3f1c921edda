"""The one extraction rule: what the scrape API takes, the client sends, adapters pass to
`StepContext.fetch(extract=…)` and the engines apply (`portwright.engines.ladder.extract`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

__all__ = ["ExtractRule"]


@dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class ExtractRule:
    """One value to extract: a CSS or XPath selector, text or an attribute, first or all."""

    selector: Annotated[str, Field(min_length=1, max_length=500)]
    type: Literal["css", "xpath"] = "css"
    attribute: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    all: bool = False
