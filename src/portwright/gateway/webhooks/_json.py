"""Parsing a webhook body within limits: a body too deep to parse is refused, never a crash.

`json.loads` recurses once per nesting level, so a 100,000-deep `[[[[…]]]]` (a few
hundred kilobytes, under any sane size limit) raises `RecursionError`, and a
moderately deep one still costs every later consumer a recursion of that depth.
The depth is measured first, without recursion (strings stripped, brackets
counted), and anything over `MAX_DEPTH` is refused before the parser sees it.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "BodyError", "json_depth", "parse_body"]

MAX_DEPTH = 64
"""Deepest nesting a webhook body may have (real platforms' payloads stay under 15)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_OPEN = frozenset(b"[{")


class BodyError(ValueError):
    """The body is not JSON this receiver accepts; `problem` says why (for the 400)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"body: {problem}")
        self.problem = problem


def json_depth(body: bytes, *, stop_after: int | None = None) -> int:
    """The deepest bracket nesting of `body` outside JSON strings (counting stops once it
    passes `stop_after`). Iterative: safe on any depth."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for char in brackets:
        if char in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_after is not None and deepest > stop_after:
                    break
        else:
            depth -= 1
    return deepest


def parse_body(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `body`; BodyError when it is not UTF-8 JSON or nests deeper than
    `max_depth`."""
    if json_depth(body, stop_after=max_depth) > max_depth:
        raise BodyError(f"JSON nested deeper than {max_depth} levels: refused")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BodyError(f"not valid JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer over the digit limit
        raise BodyError(f"not parseable within limits ({exc})") from None
