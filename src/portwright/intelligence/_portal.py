"""Forecasts for a portal's keys, read from the store's slot runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from portwright.intelligence._history import predictor_from_runs
from portwright.intelligence._model import DAY_S, Forecast, PredictorConfig, Window

if TYPE_CHECKING:
    from portwright.store import Store

__all__ = ["KeyForecast", "portal_forecasts"]

HISTORY_DAYS = 56  # the predictor learns from the last eight weeks of a key


@dataclass(frozen=True, slots=True)
class KeyForecast:
    center: str
    visa_type: str
    at: float
    forecast: Forecast
    explore: tuple[Window, ...] = ()  # spans a watcher explores: a hypothesis, not a forecast


def portal_forecasts(
    store: Store,
    portal: str,
    *,
    center: str | None = None,
    visa_type: str | None = None,
    at: float | None = None,
    horizon_s: float = 2 * DAY_S,
    config: PredictorConfig | None = None,
) -> list[KeyForecast]:
    """Per (center, visa type) of `portal` with observations: the predicted windows,
    and the spans a `WatchHub` (exploring with its defaults) would poll densely on the
    days with no predicted window (`ReleasePredictor.candidates`): where a window is
    likeliest, to be confirmed or refuted, not a prediction.

    The forecast starts at `at`, by default at the key's latest scan: observations
    carry the portal's clock, which need not be this machine's.
    """
    out = []
    for c, v, latest in store.intel.slots.keys(portal):
        if (center is not None and c != center) or (visa_type is not None and v != visa_type):
            continue
        now = latest if at is None else at
        runs = store.intel.slots.history(portal, c, v, since=now - HISTORY_DAYS * DAY_S)
        runs = [r for r in runs if r.first_at <= now]
        key = f"{portal}/{c}/{v}"
        predictor = predictor_from_runs(key, runs, config)
        forecast = predictor.forecast(key, now, horizon_s)
        explore = predictor.candidates(key, now, horizon_s, exclude=forecast.windows)
        out.append(KeyForecast(c, v, now, forecast, explore))
    return out
