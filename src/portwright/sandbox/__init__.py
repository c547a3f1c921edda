"""The sandbox world: simulated portals and infrastructure, on loopback, with chaos knobs.

Start everything with `portwright sandbox`, or in code::

    from portwright.sandbox import SandboxWorld, default_services
    with SandboxWorld(default_services(), seed=7) as world:
        print(world.url("consulate"))
"""

from portwright.sandbox._chaos import ChaosKnobs, ChaosMiddleware, ChaosState, identity_of_scope
from portwright.sandbox._ledger import Ledger, LedgerEntry
from portwright.sandbox._registry import default_services
from portwright.sandbox._world import SandboxWorld, ServiceContext, ServiceSpec, TcpHandler

__all__ = [
    "ChaosKnobs",
    "ChaosMiddleware",
    "ChaosState",
    "Ledger",
    "LedgerEntry",
    "SandboxWorld",
    "ServiceContext",
    "ServiceSpec",
    "TcpHandler",
    "default_services",
    "identity_of_scope",
]
