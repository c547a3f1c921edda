"""Wire models of adapter rollouts: which version of a portal's adapter new jobs start on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Probe", "ProbePut", "Rollout", "RolloutAction", "RolloutPut", "ShadowAgreement"]

_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


class RolloutPut(BaseModel):
    """A change to a portal's rollout; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    live: str | None = Field(None, pattern=_VERSION, description="version new jobs start on")
    canary: str | None = Field(None, pattern=_VERSION, description="version on trial")
    canary_percent: int | None = Field(None, ge=0, le=100, description="share of new jobs")
    canary_tenants: list[str] | None = Field(
        None, max_length=200, description="tenant ids whose new jobs all start on the canary"
    )
    shadow: str | None = Field(None, pattern=_VERSION, description="runs read-only steps beside")
    promote_after: int | None = Field(
        None, ge=0, le=100_000, description="promote the shadow after N agreeing jobs (0: never)"
    )
    rollback_margin: float | None = Field(None, ge=0.0, le=1.0)
    rollback_window_s: float | None = Field(None, gt=0.0, le=30 * 86400.0)
    rollback_min_jobs: int | None = Field(None, ge=1, le=100_000)
    clear_canary: bool = False
    clear_shadow: bool = False
    tenant: str | None = Field(
        None, min_length=1, max_length=64, description="this tenant's own rollout, not the portal's"
    )
    reason: str = Field("", max_length=500)


class RolloutAction(BaseModel):
    """Promote or roll back; `which` (promote) is `canary` or `shadow`."""

    model_config = ConfigDict(extra="forbid")

    which: str = Field("", pattern=r"^(|canary|shadow)$")
    tenant: str | None = Field(None, min_length=1, max_length=64)
    reason: str = Field("", max_length=500)


class ShadowAgreement(BaseModel):
    step: str
    shadow_version: str
    agree: int
    differ: int
    error: int
    refused: int
    agreement: float | None


class ProbePut(BaseModel):
    """A portal's synthetic probe: the live version's `probe` on `input` every `every_s`."""

    model_config = ConfigDict(extra="forbid")

    input: dict[str, object] = Field(description="a sample input of the portal's adapter")
    every_s: float = Field(300.0, ge=1.0, le=86400.0)
    enabled: bool = True


class Probe(BaseModel):
    every_s: float
    enabled: bool
    last_at: float | None
    last_version: str | None
    last_outcome: str | None = Field(
        description="ok, page_changed, adapter_error, no_probe, or a portal error class"
    )
    last_detail: str | None
    last_ok_at: float | None
    failures: int


class Rollout(BaseModel):
    portal: str
    tenant: str | None
    adapter: str
    installed: list[str]
    live: str
    canary: str | None
    canary_percent: int
    canary_tenants: list[str]
    shadow: str | None
    promote_after: int
    rollback_margin: float
    rollback_window_s: float
    rollback_min_jobs: int
    updated_by: str
    updated_at: float | None
    reason: str
    break_rates: dict[str, list[int]] = Field(
        default_factory=dict, description="version role → [broken, judged] over the window"
    )
    shadow_agreement: list[ShadowAgreement] = Field(default_factory=list)
    probe: Probe | None = None
