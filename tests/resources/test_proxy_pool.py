"""The proxy pool: tiers, countries, sticky sessions, health, burns, providers and exhaustion."""

from __future__ import annotations

import pytest

from portwright.resources import (
    BreakerConfig,
    PoolExhaustedError,
    Proxy,
    ProxyPool,
    RotatingGateway,
    StaticProxyList,
)
from portwright.resources.proxies import Burn, HealthPolicy, MemoryBurnLedger, StoreBurnLedger
from portwright.sdk import BlockedError
from portwright.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _proxy(name: str, tier: str, country: str, provider: str = "static") -> Proxy:
    return Proxy(name, f"http://127.0.0.1:{9000 + len(name)}", tier, country, provider)


def _static() -> StaticProxyList:
    return StaticProxyList(
        "static",
        [
            _proxy("dc-us-1", "datacenter", "US"),
            _proxy("dc-us-2", "datacenter", "US"),
            _proxy("dc-de-1", "datacenter", "DE"),
            _proxy("res-gb-1", "residential", "GB"),
            _proxy("mob-us-1", "mobile", "US"),
        ],
    )


def test_acquire_honours_tier_and_country_and_prefers_the_cheapest_tier() -> None:
    """A tier and country filter the candidates; without a tier the cheapest rank is used."""
    pool = ProxyPool([_static()])
    assert pool.acquire(site="s", tier="residential").name == "res-gb-1"
    assert pool.acquire(site="s", tier="datacenter", country="de").name == "dc-de-1"
    assert pool.acquire(site="s").tier == "datacenter"
    with pytest.raises(PoolExhaustedError):
        pool.acquire(site="s", tier="mobile", country="FR")
    with pytest.raises(ValueError, match="unknown proxy tier"):
        pool.acquire(site="s", tier="satellite")
    assert pool.cost(pool.acquire(site="s", tier="mobile")) > pool.cost(pool.acquire(site="s"))


def test_a_session_sticks_to_its_proxy_while_others_rotate() -> None:
    """The same session gets the same proxy; session-less acquisitions go round robin."""
    pool = ProxyPool([_static()])
    sticky = {
        pool.acquire(site="s", tier="datacenter", country="US", session="a").name for _ in range(5)
    }
    assert len(sticky) == 1
    spread = {pool.acquire(site="s", tier="datacenter", country="US").name for _ in range(4)}
    assert spread == {"dc-us-1", "dc-us-2"}


def test_failures_cool_a_proxy_down_exponentially_and_success_heals_it() -> None:
    """Consecutive failures keep a proxy out for 2, then 4 seconds; a success resets it."""
    clock = Clock()
    pool = ProxyPool([_static()], clock=clock, health=HealthPolicy(cooldown_base_s=2.0))
    first = pool.acquire(site="s", tier="datacenter", country="US", session="x")
    pool.failed(first)
    other = pool.acquire(site="s", tier="datacenter", country="US", session="x")
    assert other.name != first.name
    pool.failed(other)
    with pytest.raises(PoolExhaustedError):
        pool.acquire(site="s", tier="datacenter", country="US")
    clock.now += 2.1
    assert pool.acquire(site="s", tier="datacenter", country="US", session="y").name == first.name
    pool.failed(first)
    clock.now += 2.1
    assert pool.acquire(site="s", tier="datacenter", country="US", session="z").name == other.name
    pool.succeeded(first, latency_s=0.2)
    [status] = [s for s in pool.status() if s.name == first.name]
    assert status.cooling_until is None
    assert status.failures == 2
    assert status.latency_s == pytest.approx(0.2)


def test_a_burn_is_per_site_and_expires() -> None:
    """A proxy burned by one site stays usable for another, and returns after the burn's TTL."""
    clock = Clock()
    pool = ProxyPool([_static()], clock=clock)
    banned = pool.acquire(site="a", tier="residential")
    assert pool.burn(banned, site="a", reason="403", ttl_s=60) is None
    with pytest.raises(PoolExhaustedError) as caught:
        pool.acquire(site="a", tier="residential")
    assert isinstance(caught.value, BlockedError)
    assert caught.value.details["pool_exhausted"] is True
    assert pool.acquire(site="b", tier="residential").name == banned.name
    clock.now += 61
    pool.refresh_s = 0.0
    assert pool.acquire(site="a", tier="residential").name == banned.name


def test_a_provider_breaker_takes_a_failing_provider_out() -> None:
    """When one provider's proxies keep failing, its breaker opens and the other provider serves."""
    flaky = StaticProxyList(
        "flaky", [_proxy(f"f{i}", "datacenter", "US", "flaky") for i in range(3)]
    )
    steady = StaticProxyList("steady", [_proxy("s1", "datacenter", "US", "steady")])
    pool = ProxyPool(
        [flaky, steady],
        breaker=BreakerConfig(min_calls=3, failure_rate=0.5, open_s=60),
        health=HealthPolicy(cooldown_base_s=0.0),
    )
    for proxy in flaky.proxies():
        pool.failed(proxy)
    assert pool.breaker_state("flaky") == "open"
    assert {pool.acquire(site="s").name for _ in range(4)} == {"s1"}


def test_a_rotating_gateway_mints_fresh_sessions_until_its_limit() -> None:
    """Burning a gateway identity opens a new session on its endpoint, a bounded number of times."""
    gateway = RotatingGateway(
        "gw",
        "http://127.0.0.1:7000",
        user="acct",
        password="pw",
        tier="residential",
        countries=["gb"],
        slots=1,
        max_sessions=2,
    )
    pool = ProxyPool([gateway])
    first = pool.acquire(site="s", tier="residential", country="GB")
    assert first.username == "acct-country-gb-session-0x0"
    assert first.url == "http://acct-country-gb-session-0x0:pw@127.0.0.1:7000"
    replacement = pool.burn(first, site="s", reason="403")
    assert replacement is not None
    assert replacement.username == "acct-country-gb-session-0x1"
    assert pool.acquire(site="s", tier="residential").name == replacement.name
    assert pool.burn(replacement, site="s", reason="403") is None
    with pytest.raises(PoolExhaustedError):
        pool.acquire(site="s", tier="residential")


def test_as_identity_provider_rotation_ends_when_the_pool_is_exhausted() -> None:
    """proxy_for is sticky per job; rotate burns it and answers False once nothing is left."""
    pool = ProxyPool([_static()], identity_tier="residential")
    url = pool.proxy_for("job-1", "consulate")
    assert url is not None
    assert pool.proxy_for("job-1", "consulate") == url
    assert pool.rotate("job-1", "consulate", "403") is False
    assert pool.proxy_for("job-1", "consulate") == url  # fails closed: never a direct connection
    assert ProxyPool([]).proxy_for("job-2", "consulate") is None
    pool.mark_exhausted("job:job-3")
    assert pool.rotate("job-3", "other", "ladder found nothing") is False


def test_proxy_urls_keep_credentials_out_of_the_server_and_the_repr() -> None:
    """Credentials live in username/password, are quoted in `url`, and never appear in repr."""
    proxy = Proxy(
        "p", "http://127.0.0.1:1", "datacenter", "US", "x", username="u", password="p@ss:w"
    )
    assert proxy.url == "http://u:p%40ss%3Aw@127.0.0.1:1"
    assert "p@ss" not in repr(proxy)
    assert proxy.for_playwright() == {
        "server": "http://127.0.0.1:1",
        "bypass": "<-loopback>",
        "username": "u",
        "password": "p@ss:w",
    }
    with pytest.raises(ValueError, match="credentials"):
        Proxy("p", "http://u:p@127.0.0.1:1", "datacenter", "US", "x")


@pytest.mark.postgres
def test_burns_are_shared_by_every_worker_on_the_database(db_url: str) -> None:
    """A burn made by one worker's pool keeps the proxy out of another worker's pool."""
    store = Store.open(db_url)
    try:
        one = ProxyPool([_static()], ledger=StoreBurnLedger(store), refresh_s=0.0)
        two = ProxyPool([_static()], ledger=StoreBurnLedger(store), refresh_s=0.0)
        banned = one.acquire(site="shop", tier="residential")
        one.burn(banned, site="shop", reason="403 block page", forever=True)
        with pytest.raises(PoolExhaustedError):
            two.acquire(site="shop", tier="residential")
        [row] = store.fleet.active_burns()
        assert (row.proxy, row.scope, row.until) == ("res-gb-1", "shop", None)
        assert store.fleet.unburn("res-gb-1") == 1
        assert two.acquire(site="shop", tier="residential").name == "res-gb-1"
    finally:
        store.close()


def test_the_memory_ledger_forgets_expired_burns() -> None:
    """Only unexpired burns are active."""
    ledger = MemoryBurnLedger()
    ledger.burn(Burn("a", "*", "old", until=1.0))
    ledger.burn(Burn("b", "*", "forever", until=None))
    assert [b.proxy for b in ledger.active()] == ["b"]
