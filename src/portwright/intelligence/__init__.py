"""Release-window prediction, budgeted polling and matching answers by meaning, for any portal.

The package knows no portal: keys are strings the caller composes (for
example ``"consulate/ACC/tourist"``) and times are POSIX seconds, so an
app, a watcher job or an API endpoint can use it alike.
"""

from portwright.intelligence._history import SlotRun, predictor_from_runs
from portwright.intelligence._matching import (
    DifflibMatcher,
    EmbeddingMatcher,
    Matcher,
    MatcherUnavailableError,
    TextMatch,
    default_matcher,
    normalise,
)
from portwright.intelligence._model import Forecast, PredictorConfig, ReleasePredictor, Window
from portwright.intelligence._portal import KeyForecast, portal_forecasts
from portwright.intelligence._service import WatchService
from portwright.intelligence._watch import PollPlanner, RequestBudget
from portwright.intelligence._watcher import (
    ScanResult,
    SystemClock,
    WatchClock,
    WatchHub,
    WatchKey,
)

__all__ = [
    "DifflibMatcher",
    "EmbeddingMatcher",
    "Forecast",
    "KeyForecast",
    "Matcher",
    "MatcherUnavailableError",
    "PollPlanner",
    "PredictorConfig",
    "ReleasePredictor",
    "RequestBudget",
    "ScanResult",
    "SlotRun",
    "SystemClock",
    "TextMatch",
    "WatchClock",
    "WatchHub",
    "WatchKey",
    "WatchService",
    "Window",
    "default_matcher",
    "normalise",
    "portal_forecasts",
    "predictor_from_runs",
]
