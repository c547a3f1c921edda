"""Per-job plan limits come from the apps (entry-point group `portwright.plan_limits`): the
gateway's meter knows no app's limit itself, only how to apply the installed ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portwright.apps.directories.plan import LIMIT as DIRECTORIES
from portwright.gateway import PLANS, PlanLimit, installed_plan_limits
from portwright.gateway._errors import ApiError
from portwright.gateway._plans import Meter
from portwright.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'p.sqlite'}")
    yield opened
    opened.close()


def test_the_directories_limit_is_installed() -> None:
    """The directories app's limit is found through its entry point, and no plan of the
    core carries a directories figure of its own."""
    assert DIRECTORIES in installed_plan_limits()
    assert not any(hasattr(plan, "directories_per_job") for plan in PLANS.values())


@pytest.mark.parametrize(
    ("plan", "allowed"), [("starter", 50), ("growth", 100), ("business", 300), ("enterprise", 500)]
)
def test_each_plan_allows_its_directories_and_refuses_one_more(
    store: Store, plan: str, allowed: int
) -> None:
    """At the plan's figure a job passes; one more is 402 plan_limit naming the field."""
    meter = Meter(store)
    meter.check_job_shape(PLANS[plan], {"directories": ["d"] * allowed})
    with pytest.raises(ApiError) as refused:
        meter.check_job_shape(PLANS[plan], {"directories": ["d"] * (allowed + 1)})
    assert refused.value.status == 402
    assert refused.value.body.code == "plan_limit"
    assert refused.value.body.message == (
        f"input.directories: {allowed + 1} directories exceed the {plan} plan's {allowed} per job"
    )


def test_a_meter_applies_whatever_limits_it_is_given(store: Store) -> None:
    """Without the app's limit nothing caps directories; another limit applies by its own
    measure, only to the plans it names, and not to jobs it does not measure."""
    bare = Meter(store, limits=[])
    bare.check_job_shape(PLANS["starter"], {"directories": ["d"] * 10_000})
    pages = PlanLimit(field="input.pages", unit="pages", per_plan={"starter": 2},
                      measure=lambda job: job.get("pages"))  # fmt: skip
    meter = Meter(store, limits=[pages])
    meter.check_job_shape(PLANS["growth"], {"pages": 99})
    meter.check_job_shape(PLANS["starter"], {"url": "u"})
    with pytest.raises(ApiError) as refused:
        meter.check_job_shape(PLANS["starter"], {"pages": 3})
    assert refused.value.body.message.startswith("input.pages: 3 pages exceed the starter plan's 2")
