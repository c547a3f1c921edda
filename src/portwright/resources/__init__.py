"""Resources the engines draw on: identities (proxies, profiles), secrets, captcha solvers.

- `ProxyPool` (also the orchestrator's `IdentityProvider`) over `ProxyProvider`s
  (`StaticProxyList`, `RotatingGateway`); see `portwright.resources.proxies`.
- `ProfilePool`: persistent browser profiles per user, with cooldown and burns.
- `SolverChain`: captcha providers (`TwoCaptchaSolver`, `CreateTaskSolver`) in
  fallback order, a breaker each, a `CaptchaBudget` per tenant, an operator last.
- From the settings: `proxy_pool_from`, `solver_chain_from`, and `identity_from`, the
  `IdentityRouter` saying which adapters' jobs use which proxies (docs/configuration.md).
"""

from portwright.resources._breaker import BreakerConfig, CircuitBreaker
from portwright.resources._captcha import CaptchaSolver, TwoCaptchaSolver
from portwright.resources._captcha_tasks import CreateTaskSolver
from portwright.resources._configured import (
    IdentityRoute,
    IdentityRouter,
    breaker_config,
    identity_from,
    proxy_pool_from,
    solver_chain_from,
    solver_from,
)
from portwright.resources._identity import (
    BlobSealer,
    DirectIdentity,
    IdentityProvider,
    SecretsProvider,
    StaticSecrets,
)
from portwright.resources._profiles import (
    ProfileLease,
    ProfilePool,
    ProfilesBurnedError,
    ProfilesCoolingError,
)
from portwright.resources._solvers import CaptchaBudget, OperatorSolver, SolveAttempt, SolverChain
from portwright.resources.proxies import (
    PoolExhaustedError,
    Proxy,
    ProxyPool,
    ProxyProvider,
    RotatingGateway,
    StaticProxyList,
)

__all__ = [
    "BlobSealer",
    "BreakerConfig",
    "CaptchaBudget",
    "CaptchaSolver",
    "CircuitBreaker",
    "CreateTaskSolver",
    "DirectIdentity",
    "IdentityProvider",
    "IdentityRoute",
    "IdentityRouter",
    "OperatorSolver",
    "PoolExhaustedError",
    "ProfileLease",
    "ProfilePool",
    "ProfilesBurnedError",
    "ProfilesCoolingError",
    "Proxy",
    "ProxyPool",
    "ProxyProvider",
    "RotatingGateway",
    "SecretsProvider",
    "SolveAttempt",
    "SolverChain",
    "StaticProxyList",
    "StaticSecrets",
    "TwoCaptchaSolver",
    "breaker_config",
    "identity_from",
    "proxy_pool_from",
    "solver_chain_from",
    "solver_from",
]
