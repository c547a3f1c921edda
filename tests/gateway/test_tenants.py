"""Tenant scoping (another tenant's job is a 404) and plan quotas (402)."""

from __future__ import annotations

import pytest

from portwright.client import Client, NotFoundError, PaymentRequiredError
from portwright.gateway import PLANS
from portwright.gateway._plans import current_period
from tests.gateway._support import Stack, new_tenant_name


def test_other_tenants_jobs_are_404(stack: Stack, client: Client) -> None:
    """Reading, listing, steering or feeding another tenant's job behaves as if it did not exist."""
    job = client.submit("booking-stub", {"timeout_s": 30})
    with Client(stack.base_url, stack.new_key(new_tenant_name())) as other:
        assert other.list_jobs().data == []
        for attempt in (
            lambda: other.get_job(job.id),
            lambda: other.events(job.id),
            lambda: other.cancel(job.id),
            lambda: other.pause(job.id),
            lambda: other.retry(job.id),
            lambda: other.provide_input(job.id, "payment", {}),
        ):
            with pytest.raises(NotFoundError):
                attempt()
    assert client.get_job(job.id).status != "cancelled"
    client.cancel(job.id)


def test_me_and_plan(stack: Stack) -> None:
    """/v1/me names the tenant, plan and scopes of the key."""
    name = new_tenant_name()
    with Client(stack.base_url, stack.new_key(name, plan="growth")) as pw:
        me = pw.me()
        assert (me.tenant, me.plan, me.scopes) == (name, "growth", ["jobs"])
        assert pw.usage().credits_limit == PLANS["growth"].credits_per_month


def test_jobs_per_month_quota_is_402(stack: Stack, client: Client) -> None:
    """Past the plan's jobs per month, submissions are 402 and nothing is created."""
    me = client.me()
    limit = PLANS[me.plan].jobs_per_month
    assert stack.store.usage.reserve(
        me.tenant_id, current_period(), jobs=limit - 1, credits=0, max_jobs=limit, max_credits=0
    )
    client.submit("echo", {"url": stack.urls["echo"], "key": "last"})
    with pytest.raises(PaymentRequiredError) as refused:
        client.submit("echo", {"url": stack.urls["echo"], "key": "over"})
    assert refused.value.code == "quota_exceeded"
    assert f"{limit} of {limit}" in refused.value.message
    assert len(client.list_jobs().data) == 1


def test_directories_per_job_cap_is_402(stack: Stack, client: Client) -> None:
    """A job naming more directories than the plan allows (starter: 50) is 402."""
    with pytest.raises(PaymentRequiredError) as refused:
        client.submit("echo", {"url": "u", "key": "k", "directories": ["d"] * 51})
    assert "input.directories" in refused.value.message
    assert client.usage().jobs == 0


def test_failed_submission_is_not_charged(stack: Stack, client: Client) -> None:
    """A submission refused by validation does not count against the quota."""
    from portwright.client import InvalidRequestError

    with pytest.raises(InvalidRequestError):
        client.submit("echo", {"url": "u"})
    with pytest.raises(NotFoundError):
        client.submit("nope", {})
    assert client.usage().jobs == 0
