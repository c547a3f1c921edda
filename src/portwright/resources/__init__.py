"""Resources the engines draw on: identities (proxies, profiles), secrets, captcha solvers."""

from portwright.resources._captcha import CaptchaSolver, TwoCaptchaSolver
from portwright.resources._identity import (
    DirectIdentity,
    IdentityProvider,
    SecretsProvider,
    StaticSecrets,
)

__all__ = [
    "CaptchaSolver",
    "DirectIdentity",
    "IdentityProvider",
    "SecretsProvider",
    "StaticSecrets",
    "TwoCaptchaSolver",
]
