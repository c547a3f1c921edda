"""Envelope encryption with AES-GCM: master key → per-tenant data keys → credentials.

Every ciphertext is `nonce (12 bytes) || AES-GCM(ciphertext + tag)`, bound by
its associated data to where it belongs (tenant, key version, credential
name), so a ciphertext copied to another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["MasterKey", "MasterKeyError", "VaultCryptoError", "derive", "open_sealed", "seal"]

NONCE_LEN = 12


class VaultCryptoError(RuntimeError):
    """A ciphertext did not decrypt: wrong key, or it was tampered with or moved."""


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_LEN)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_LEN], sealed[NONCE_LEN:], aad)
    except InvalidTag:
        raise VaultCryptoError("ciphertext does not decrypt under this key") from None


class MasterKeyError(ValueError):
    """A configured master key is unusable (too short to be a key); names the setting."""


MIN_MATERIAL_BYTES = 32
HKDF_SALT = b"portwright-master-key|v2"
HKDF_INFO = b"portwright vault: wraps per-tenant data keys"


def _kid(key: bytes) -> str:
    return hashlib.sha256(b"portwright-master-kid|" + key).hexdigest()[:16]


class MasterKey:
    """A 256-bit master key and its id (a hash prefix, safe to store beside what it wraps).

    32 bytes (urlsafe base64 or hex, or raw bytes) are the key itself. Any other material
    of at least 32 bytes is a passphrase, derived with HKDF-SHA256 (salt and info fixed,
    so the same passphrase gives the same key); shorter material is refused with
    `MasterKeyError` naming `setting`, unless `allow_short` (a previous key, kept only to
    read what it wrapped). Data keys are wrapped under a key id (`kid`), and the ids of
    the legacy derivation (bare SHA-256, before v2) stay readable through `readable`:
    `Vault.rotate_master()` moves what they wrapped to the current key.
    """

    def __init__(
        self,
        material: str | bytes,
        *,
        setting: str = "PORTWRIGHT_MASTER_KEY",
        allow_short: bool = False,
    ) -> None:
        raw = _raw_key(material)
        legacy: dict[str, bytes] = {}
        if raw is not None:
            self.key = raw
        else:
            phrase = material if isinstance(material, bytes) else material.strip().encode()
            if len(phrase) < MIN_MATERIAL_BYTES and not allow_short:
                raise MasterKeyError(
                    f"{setting}: {len(phrase)} bytes is too short for a master key (at least "
                    f"{MIN_MATERIAL_BYTES} bytes of entropy): use 32 random bytes, base64 or "
                    "hex encoded (MasterKey.generate()), or a passphrase of 32+ random "
                    "characters; to keep reading data wrapped by the short key, move it to "
                    "PORTWRIGHT_PREVIOUS_MASTER_KEYS and run the vault's master rotation"
                )
            self.key = derive(phrase)
            old = hashlib.sha256(phrase).digest()  # v1: a single SHA-256 stretch
            legacy[_kid(old)] = old
        self.kid = _kid(self.key)
        self.readable: dict[str, bytes] = {self.kid: self.key, **legacy}
        """Every key id this material can unwrap, with its key (current first)."""

    def __repr__(self) -> str:
        return f"MasterKey(kid={self.kid!r})"

    @staticmethod
    def generate() -> str:
        return base64.urlsafe_b64encode(os.urandom(32)).decode()


def derive(phrase: bytes) -> bytes:
    """The v2 derivation of passphrase material: HKDF-SHA256 to 32 bytes."""
    return HKDF(algorithm=SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(phrase)


def _raw_key(material: str | bytes) -> bytes | None:
    """The 32 bytes `material` encodes as raw bytes, urlsafe base64 or hex; else None."""
    if isinstance(material, bytes):
        return material if len(material) == 32 else None
    text = material.strip()
    for decode in (base64.urlsafe_b64decode, bytes.fromhex):
        try:
            raw = decode(text)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    return None
