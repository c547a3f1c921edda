"""How a shadow run's output is compared with the live one's, per read-only step.

By default the two outputs must be equal as JSON. A `ShadowTolerance` relaxes that for
differences that are expected and harmless: `ignore` lists dotted key paths left out of
the comparison (`"fetched_at"`, `"meta.request_id"`; a path matches at that place in
nested objects, and inside lists of objects), and numbers agree within `rel_tol` (relative)
or `abs_tol` (absolute), as `math.isclose`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ShadowTolerance", "outputs_agree"]


@dataclass(frozen=True, slots=True)
class ShadowTolerance:
    ignore: frozenset[str] = field(default_factory=frozenset)
    rel_tol: float = 0.0
    abs_tol: float = 0.0

    def __init__(
        self, *, ignore: Iterable[str] = (), rel_tol: float = 0.0, abs_tol: float = 0.0
    ) -> None:
        if rel_tol < 0 or abs_tol < 0:
            raise ValueError("rel_tol and abs_tol must not be negative")
        object.__setattr__(self, "ignore", frozenset(ignore))
        object.__setattr__(self, "rel_tol", float(rel_tol))
        object.__setattr__(self, "abs_tol", float(abs_tol))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _agree(live: Any, shadow: Any, tol: ShadowTolerance, path: str) -> bool:
    if isinstance(live, dict) and isinstance(shadow, dict):
        keys = {
            str(k)
            for k in (*live, *shadow)
            if (f"{path}.{k}" if path else str(k)) not in tol.ignore
        }
        return all(
            str(k) in live and str(k) in shadow
            and _agree(live[k], shadow[k], tol, f"{path}.{k}" if path else str(k))
            for k in keys
        )  # fmt: skip
    if isinstance(live, list | tuple) and isinstance(shadow, list | tuple):
        return len(live) == len(shadow) and all(
            _agree(a, b, tol, path) for a, b in zip(live, shadow, strict=True)
        )
    if _number(live) and _number(shadow):
        return math.isclose(live, shadow, rel_tol=tol.rel_tol, abs_tol=tol.abs_tol)
    return json.dumps(live, sort_keys=True, default=str) == json.dumps(
        shadow, sort_keys=True, default=str
    )


def outputs_agree(live: Any, shadow: Any, tolerance: ShadowTolerance | None = None) -> bool:
    """Whether a shadow's output agrees with the live one's (exact JSON equality without a
    tolerance)."""
    if tolerance is None:
        return json.dumps(live, sort_keys=True, default=str) == json.dumps(
            shadow, sort_keys=True, default=str
        )
    return _agree(live, shadow, tolerance, "")
