"""The vault's master key: 32-byte keys as they are, passphrases through HKDF, short ones
refused, and data wrapped under the old single-SHA-256 stretch still readable."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from portwright.resources.vault import MasterKey, MasterKeyError, Vault, VaultCryptoError
from portwright.settings import Settings
from portwright.store import Store

PHRASE = "correct horse battery staple, and then some more words"
SHORT = "hunter2-but-longer"  # 18 bytes


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


def test_a_passphrase_is_derived_with_hkdf_not_a_bare_sha256() -> None:
    """A 32+-byte passphrase becomes HKDF-SHA256(salt, info) of it: not its SHA-256, stable,
    and a different key id; 32-byte base64/hex keys are used as they are."""
    key = MasterKey(PHRASE)
    assert key.key != hashlib.sha256(PHRASE.encode()).digest()
    info = b"portwright vault: wraps per-tenant data keys"
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=b"portwright-master-key|v2", info=info)
    expected = hkdf.derive(PHRASE.encode())
    assert key.key == expected
    assert MasterKey(PHRASE).kid == key.kid
    raw = MasterKey.generate()
    assert len(MasterKey(raw).key) == 32
    assert MasterKey(raw).readable == {MasterKey(raw).kid: MasterKey(raw).key}
    assert MasterKey(bytes(range(32)).hex()).key == bytes(range(32))


def test_a_short_master_key_is_refused_naming_the_setting(tmp_path: Path) -> None:
    """Under 32 bytes is not a key: MasterKeyError names PORTWRIGHT_MASTER_KEY and the way
    out; Vault.from_settings refuses it before touching the database."""
    with pytest.raises(MasterKeyError) as refused:
        MasterKey(SHORT)
    assert "PORTWRIGHT_MASTER_KEY" in str(refused.value)
    assert "too short" in str(refused.value)
    settings = Settings(data_dir=tmp_path, master_key=SecretStr(SHORT))
    with pytest.raises(MasterKeyError, match="PORTWRIGHT_MASTER_KEY"):
        Vault.from_settings(settings)


def test_data_wrapped_under_the_old_sha256_stretch_stays_readable_and_rotates(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    """A credential stored by the old vault (master key = SHA-256 of the passphrase) reads
    back with the same passphrase now derived by HKDF; rotate_master moves its data key to
    the HKDF key, after which the old derivation alone no longer opens it. A short key of
    old moves to previous_master_keys and stays readable the same way."""
    tenant = store.tenants.ensure("kdf").id
    legacy = MasterKey(hashlib.sha256(PHRASE.encode()).digest())  # exactly the old key
    Vault(legacy, store=store).put(tenant, "portal-password", "s3cret")
    current = Vault(MasterKey(PHRASE), store=store)
    assert current.get(tenant, "portal-password") == "s3cret"
    assert current.rotate_master(tenant) == 1
    rows = store.vault.data_keys(tenant)
    assert {r.master_kid for r in rows} == {MasterKey(PHRASE).kid}
    assert Vault(MasterKey(PHRASE), store=store).get(tenant, "portal-password") == "s3cret"
    with pytest.raises(VaultCryptoError):
        Vault(legacy, store=store).get(tenant, "portal-password")

    other = store.tenants.ensure("kdf-short").id
    Vault(MasterKey(hashlib.sha256(SHORT.encode()).digest()), store=store).put(other, "pw", "x1")
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, master_key=SecretStr(MasterKey.generate()),
        previous_master_keys=[SecretStr(SHORT)],
    )  # fmt: skip
    moving = Vault.from_settings(settings, store=store)
    assert moving.get(other, "pw") == "x1"
    assert moving.rotate_master(other) == 1
