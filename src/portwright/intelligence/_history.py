"""From stored slot runs to a forecast: the predictor fed by what was observed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from portwright.intelligence._model import PredictorConfig, ReleasePredictor

__all__ = ["SlotRun", "predictor_from_runs"]


class SlotRun(Protocol):
    """A run of scans that saw the same open slots (the store's `SlotRunRecord`)."""

    @property
    def first_at(self) -> float: ...
    @property
    def last_at(self) -> float: ...
    @property
    def open(self) -> int: ...
    @property
    def new(self) -> int: ...


def predictor_from_runs(
    key: str, runs: Iterable[SlotRun], config: PredictorConfig | None = None
) -> ReleasePredictor:
    """A predictor that has learned `runs` (oldest first) under `key`."""
    predictor = ReleasePredictor(config)
    last = float("-inf")
    for run in runs:
        if run.first_at < last:  # an overlapping run (two scanners at once): skip it
            continue
        predictor.observe_run(key, run.first_at, run.last_at, run.open, run.new)
        last = run.last_at
    return predictor
