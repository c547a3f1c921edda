"""`/v1/scrape`, `/v1/batch` and `/v1/usage`: sync and async, guard, credits and quotas."""

from __future__ import annotations

import httpx
import pytest

from portwright.client import Client, InvalidRequestError, PaymentRequiredError
from portwright.client.models import BatchRequest, ExtractRule, ScrapeRequest
from portwright.gateway._plans import current_period, plan_of
from portwright.testing import wait_until
from tests.gateway._support import Stack, new_tenant_name

RULES = {
    "title": ExtractRule(selector="h1.title"),
    "price": ExtractRule(selector="span.price", attribute="data-amount"),
    "heading": ExtractRule(selector="//h1/text()", type="xpath"),
}


def test_sync_scrape_returns_the_extracted_result(stack: Stack, client: Client) -> None:
    """Sync mode answers 200 with the finished job and the extracted values."""
    request = ScrapeRequest(url=f"{stack.urls['redirector']}/page", extract=RULES, mode="sync")
    job = client.scrape(request)
    assert job.status == "succeeded"
    assert job.output is not None
    assert job.output["extracted"] == {"title": "Kettle", "price": "12", "heading": "Kettle"}
    assert job.output["title"] == "Redirected"


async def test_async_scrape_returns_a_job_id(stack: Stack, client: Client) -> None:
    """Async mode answers 202 at once; the job then scrapes the static catalogue."""
    url = f"{stack.urls['scrape-static']}/product/7"
    rules = {
        "name": ExtractRule(selector="h1.title"),
        "tags": ExtractRule(selector="ul.tags li", all=True),
    }
    job = client.scrape(ScrapeRequest(url=url, extract=rules))
    assert job.status == "queued"
    await wait_until(lambda: client.get_job(job.id).status == "succeeded", timeout=20)
    output = client.get_job(job.id).output or {}
    assert output["extracted"]["name"]
    assert isinstance(output["extracted"]["tags"], list)


def test_guarded_and_unavailable_targets_are_422(stack: Stack, client: Client) -> None:
    """A URL the SSRF guard refuses, and an engine this install lacks, are 422 naming the field."""
    cases = [
        (ScrapeRequest(url=f"{stack.urls['echo-hidden']}/"), "url", "loopback"),
        (ScrapeRequest(url="http://169.254.169.254/latest/meta-data"), "url", "metadata"),
        (
            ScrapeRequest(url=f"{stack.urls['echo']}/", webhook="http://10.0.0.8/hook"),
            "webhook",
            "private",
        ),
        (ScrapeRequest(url=f"{stack.urls['echo']}/", engine="browser"), "engine", "not available"),
    ]
    for request, field, words in cases:
        with pytest.raises(InvalidRequestError) as refused:
            client.scrape(request)
        assert refused.value.status == 422
        assert refused.value.fields[0].field == field
        assert words in refused.value.fields[0].problem


async def test_redirect_to_a_private_address_fails_the_job(stack: Stack, client: Client) -> None:
    """An allowlisted page that redirects to a non-allowlisted loopback port is refused at fetch."""
    target = f"{stack.urls['redirector']}/to?u={stack.urls['echo-hidden']}/"
    job = client.scrape(ScrapeRequest(url=target))
    await wait_until(lambda: client.get_job(job.id).status == "failed", timeout=20)
    assert "SSRF guard" in (client.get_job(job.id).reason or "")
    assert stack.store.jobs.get(job.id).error_class == "permanent"


async def test_batch_and_usage(stack: Stack, client: Client) -> None:
    """A batch makes one job per item (202); usage counts jobs and credits by tier and key,
    pending until each job ends, then at the tier that served it."""
    page = f"{stack.urls['redirector']}/page"
    reply = client.batch(BatchRequest(items=[ScrapeRequest(url=page) for _ in range(3)]))
    assert len(reply.jobs) == 3
    assert {j.input["batch_id"] for j in reply.jobs} == {reply.batch_id}
    usage = client.usage()
    assert (usage.jobs, usage.credits) == (3, 3)
    assert sum(line.credits for line in usage.by_tier.values()) == 3
    ids = [j.id for j in reply.jobs]
    await wait_until(lambda: all(client.get_job(i).status == "succeeded" for i in ids), timeout=30)
    usage = client.usage()
    assert (usage.jobs, usage.credits) == (3, 3)
    assert set(usage.by_tier) == {"http"}
    assert usage.by_tier["http"].credits == 3
    assert sum(line.requests for line in usage.by_key.values()) == 3
    assert usage.period == current_period()


def test_batch_item_errors_name_the_item(stack: Stack, client: Client) -> None:
    """A refused URL inside a batch is 422 naming items.<n>.url; nothing is submitted."""
    items = [ScrapeRequest(url=f"{stack.urls['echo']}/"), ScrapeRequest(url="http://127.0.0.2/")]
    with pytest.raises(InvalidRequestError) as refused:
        client.batch(BatchRequest(items=items))
    assert refused.value.fields[0].field == "items.1.url"
    assert client.usage().jobs == 0


def test_out_of_credits_is_402(stack: Stack, client: Client) -> None:
    """When the month's credits are spent, scrapes and batches are 402 and nothing is charged."""
    me = client.me()
    plan = plan_of(me.plan)
    assert stack.store.usage.reserve(
        me.tenant_id,
        current_period(),
        jobs=0,
        credits=plan.credits_per_month,
        max_jobs=10**9,
        max_credits=10**9,
    )
    with pytest.raises(PaymentRequiredError) as refused:
        client.scrape(ScrapeRequest(url=f"{stack.urls['echo']}/"))
    assert "credits" in refused.value.message
    with pytest.raises(PaymentRequiredError):
        client.batch(BatchRequest(items=[ScrapeRequest(url=f"{stack.urls['echo']}/")]))
    assert client.usage().credits == plan.credits_per_month


def test_batch_over_the_plan_size_is_402(stack: Stack, api_key: str) -> None:
    """A batch larger than the plan allows is 402 naming the limit."""
    items = [{"url": f"{stack.urls['echo']}/?n={n}"} for n in range(101)]
    response = httpx.post(
        f"{stack.base_url}/v1/batch",
        json={"items": items},
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 402
    assert "batch size of 100" in response.json()["message"]


async def test_scrape_through_the_jobs_endpoint_is_guarded(stack: Stack, client: Client) -> None:
    """Submitting the scrape adapter via /v1/jobs runs the same guard and metering."""
    with pytest.raises(InvalidRequestError) as refused:
        client.submit("scrape", {"url": "http://localhost:1/"})
    assert refused.value.fields[0].field == "url"
    with pytest.raises(InvalidRequestError) as bad:
        client.submit("scrape", {"url": 5})
    assert bad.value.fields[0].field == "input.url"
    job = client.submit("scrape", {"url": f"{stack.urls['redirector']}/page"})
    await wait_until(lambda: client.get_job(job.id).status == "succeeded", timeout=30)
    assert client.usage().by_tier["http"].credits == 1


async def test_a_failed_scrape_costs_no_credits(stack: Stack, client: Client) -> None:
    """A scrape that ends failed is settled at zero credits (the job still counts)."""
    target = f"{stack.urls['redirector']}/to?u={stack.urls['echo-hidden']}/"
    job = client.scrape(ScrapeRequest(url=target))
    await wait_until(lambda: client.get_job(job.id).status == "failed", timeout=30)
    usage = client.usage()
    assert (usage.jobs, usage.credits) == (1, 0)
    assert usage.by_tier["unserved"].requests == 1


async def test_robots_txt_is_respected_unless_the_tenant_turns_it_off(
    stack: Stack, client: Client
) -> None:
    """A path robots.txt disallows fails with the reason; with the tenant's setting off it
    is fetched; the setting is per tenant and audited."""
    url = f"{stack.urls['scrape-static']}/private/3"
    assert client.scrape_settings().respect_robots is True
    refused = client.scrape(ScrapeRequest(url=url))
    await wait_until(lambda: client.get_job(refused.id).status == "failed", timeout=30)
    assert "robots.txt disallows" in (client.get_job(refused.id).reason or "")
    assert client.set_scrape_settings(respect_robots=False).respect_robots is False
    allowed = client.scrape(ScrapeRequest(url=url, extract=RULES))
    await wait_until(lambda: client.get_job(allowed.id).status == "succeeded", timeout=30)
    assert (client.get_job(allowed.id).output or {})["extracted"]["title"]
    with Client(stack.base_url, stack.new_key(new_tenant_name("robots"))) as other:
        assert other.scrape_settings().respect_robots is True
    audit = stack.store.audit.search(target_id=f"{client.me().tenant_id}/scrape")
    assert audit[0].after == {"respect_robots": False}
