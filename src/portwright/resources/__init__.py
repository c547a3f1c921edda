"""Resources the engines draw on: identities (proxies, profiles) and secrets."""

from portwright.resources._identity import (
    DirectIdentity,
    IdentityProvider,
    SecretsProvider,
    StaticSecrets,
)

__all__ = ["DirectIdentity", "IdentityProvider", "SecretsProvider", "StaticSecrets"]
