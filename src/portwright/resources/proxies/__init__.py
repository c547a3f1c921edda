"""The proxy pool and its providers (static lists, rotating gateways), tiers and burns."""

from portwright.resources.proxies._burns import (
    Burn,
    BurnLedger,
    MemoryBurnLedger,
    StoreBurnLedger,
)
from portwright.resources.proxies._health import HealthPolicy, ProxyHealth
from portwright.resources.proxies._model import DEFAULT_TIERS, PlaywrightProxy, Proxy, Tier
from portwright.resources.proxies._pool import GLOBAL, PoolExhaustedError, ProxyPool, ProxyStatus
from portwright.resources.proxies._providers import (
    ProxyProvider,
    RotatingGateway,
    StaticProxyList,
)

__all__ = [
    "DEFAULT_TIERS",
    "GLOBAL",
    "Burn",
    "BurnLedger",
    "HealthPolicy",
    "MemoryBurnLedger",
    "PlaywrightProxy",
    "PoolExhaustedError",
    "Proxy",
    "ProxyHealth",
    "ProxyPool",
    "ProxyProvider",
    "ProxyStatus",
    "RotatingGateway",
    "StaticProxyList",
    "StoreBurnLedger",
    "Tier",
]
