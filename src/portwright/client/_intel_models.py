"""Wire models of slot observations and release predictions (`/v1/portals/{portal}/...`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "ExploreSpan",
    "PredictedWindow",
    "Prediction",
    "PredictionList",
    "SlotObservation",
    "SlotObservationList",
]


class SlotObservation(BaseModel):
    """A run of scans of one (center, visa type) that all saw the same open slots."""

    id: int
    center: str
    visa_type: str
    open: int = Field(description="slots open during the run (0: nothing open)")
    new: int = Field(description="slots the previous run did not show (a release)")
    slot_ids: list[str]
    first_at: float = Field(description="first scan of the run (portal clock, POSIX seconds)")
    last_at: float = Field(description="last scan of the run")
    scans: int


class SlotObservationList(BaseModel):
    data: list[SlotObservation]
    next_cursor: str | None = None


class PredictedWindow(BaseModel):
    start: float
    end: float
    confidence: float = Field(description="P(the window's release rate is really high)")
    chance: float = Field(description="P(at least one release in the window on that date)")


class ExploreSpan(BaseModel):
    """Exploration, not a prediction: a span a watcher polls densely on a day with no
    predicted window, where the history makes a window likeliest, to confirm or refute it."""

    start: float
    end: float
    confidence: float = Field(
        description="P(the span's release rate, over all days, is above the key's average "
        "times the lift); that day's own sightings predicted no window there"
    )


class Prediction(BaseModel):
    center: str
    visa_type: str
    at: float = Field(description="the time the forecast starts from (portal clock)")
    fallback: bool = Field(description="too little history: no windows, poll uniformly")
    observed_days: float
    releases: int
    windows: list[PredictedWindow]
    explore: list[ExploreSpan] = Field(
        default_factory=list,
        description="exploration, not a prediction: the spans a watcher polls densely on the "
        "days with no predicted window (where a window is likeliest so far)",
    )


class PredictionList(BaseModel):
    data: list[Prediction]
