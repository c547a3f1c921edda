"""A worker loads its HTTP engine when it starts, not in the middle of its first batch
(curl_cffi's import is ~0.1 s of CPU; on the event loop it stalled every item of the
first sub-chunk a worker fetched), and a failure to preload never stops it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog

from portwright.adapters import AdapterRegistry
from portwright.engines import Fleet, _fleet
from portwright.engines.ladder import _http
from portwright.orchestrator import Runtime
from portwright.resources.tls import client_context


class CountingFleet(Fleet):
    def __init__(self) -> None:
        super().__init__()
        self.warmed = 0
        self.dbos_up_when_warmed: bool | None = None

    def warm(self) -> None:
        from dbos._dbos import _dbos_global_instance

        self.warmed += 1
        launched = _dbos_global_instance is not None and _dbos_global_instance._launched
        self.dbos_up_when_warmed = launched
        super().warm()


def test_a_worker_warms_its_fleet_before_dbos_hands_it_work(
    make_runtime: Callable[..., Runtime],
) -> None:
    client_context.cache_clear()
    fleet = CountingFleet()
    make_runtime(AdapterRegistry(), fleet=fleet)
    assert fleet.warmed == 1
    assert fleet.dbos_up_when_warmed is False  # before any workflow could run here
    assert _http._pinning_session.cache_info().currsize == 1  # curl_cffi's session class
    assert client_context.cache_info().currsize == 1  # robots.txt fetches' TLS context


def test_a_gateway_does_not_load_the_engines(make_runtime: Callable[..., Runtime]) -> None:
    fleet = CountingFleet()
    make_runtime(AdapterRegistry(), fleet=fleet, run_workers=False)
    assert fleet.warmed == 0


def test_a_failed_preload_is_a_warning_not_a_failed_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> None:
        raise ImportError("no curl_cffi here")

    monkeypatch.setattr(_fleet, "warm_http_rungs", broken)
    with structlog.testing.capture_logs() as logs:
        Fleet().warm()
    assert [entry["event"] for entry in logs] == ["could not preload the HTTP engine"]
