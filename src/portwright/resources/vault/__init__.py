"""The credential vault (envelope encryption, AES-GCM); a `SecretsProvider` for the runtime."""

from portwright.resources.vault._crypto import MasterKey, MasterKeyError, VaultCryptoError
from portwright.resources.vault._vault import Vault

__all__ = ["MasterKey", "MasterKeyError", "Vault", "VaultCryptoError"]
