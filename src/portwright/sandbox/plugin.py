"""The sandbox as a world plugin: entry point `sandbox` of the `portwright.worlds` group.

The core (`portwright up`, `portwright sandbox`, the one-process stack) never imports the
sandbox; it loads this module through `portwright.plugins.load_plugin(WORLDS, "sandbox")`
and uses what is listed here.
"""

from portwright.sandbox import ChaosKnobs, SandboxWorld, default_services
from portwright.sandbox.proxies import proxy_catalog
from portwright.sandbox.webhooks import (
    SANDBOX_SECRETS_FILE,
    sandbox_webhook_secrets,
    sandbox_webhook_sources,
)

__all__ = [
    "SANDBOX_SECRETS_FILE",
    "ChaosKnobs",
    "SandboxWorld",
    "default_services",
    "proxy_catalog",
    "sandbox_webhook_secrets",
    "sandbox_webhook_sources",
]
