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

__all__ = ["MasterKey", "VaultCryptoError", "open_sealed", "seal"]

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


class MasterKey:
    """A 256-bit master key and its id (a hash prefix, safe to store beside what it wraps).

    Accepts 32 bytes as urlsafe base64 or hex; any other string is stretched
    with SHA-256 (use a long random one).
    """

    def __init__(self, material: str | bytes) -> None:
        self.key = _key_bytes(material)
        self.kid = hashlib.sha256(b"portwright-master-kid|" + self.key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKey(kid={self.kid!r})"

    @staticmethod
    def generate() -> str:
        return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _key_bytes(material: str | bytes) -> bytes:
    if isinstance(material, bytes):
        if len(material) == 32:
            return material
        return hashlib.sha256(material).digest()
    text = material.strip()
    for decode in (base64.urlsafe_b64decode, bytes.fromhex):
        try:
            raw = decode(text)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    return hashlib.sha256(text.encode()).digest()
