"""The OpenAPI document, checked by schemathesis against the running gateway."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway._support import Stack

# schemathesis's own strategies use `random`, which this Hypothesis release deprecates.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(stack: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


def test_document_describes_every_route(stack: Stack) -> None:
    """/openapi.json lists every public route with the bearer scheme."""
    document = httpx.get(f"{stack.base_url}/openapi.json").json()
    paths = set(document["paths"])
    assert {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/input",
        "/v1/jobs/{job_id}/retry",
        "/v1/portals/{name}/pause",
        "/v1/portals/{name}/cooldown",
        "/v1/portals/{name}/cooldown/end",
        "/v1/scrape",
        "/v1/batch",
        "/v1/usage",
        "/v1/hooks/{source}",
        "/v1/credentials/{name}",
    } <= paths
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def _conforms(case: Case, api_key: str) -> None:
    case.call_and_validate(headers={"authorization": f"Bearer {api_key}"}, checks=CHECKS)


# The same checks on both databases; SQLite keeps the full example count per operation, the
# PostgreSQL copy (whose schema and handlers are the same code) runs half as many, for time.
@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case: Case, api_key: str) -> None:
    """Generated requests never get a 5xx or an answer outside the documented schema."""
    _conforms(case, api_key)


@pytest.mark.parametrize(
    "stack", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema_on_postgres(case: Case, api_key: str) -> None:
    """The same conformance checks against the PostgreSQL stack, with fewer examples."""
    _conforms(case, api_key)
