"""The credential vault: stored encrypted, never returned, used only inside a step."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from portwright.client import Client, InvalidRequestError, NotFoundError
from portwright.resources.vault import MasterKey, Vault, VaultCryptoError
from portwright.sdk import PermanentError
from portwright.testing import wait_until
from tests.gateway._support import Stack, new_tenant_name


def _secret() -> str:
    return f"S3cr3t-{secrets.token_hex(12)}"


def test_credentials_api_never_returns_values(stack: Stack, api_key: str, client: Client) -> None:
    """PUT stores and replaces, GET lists names only, DELETE removes (404 when absent)."""
    value = _secret()
    created = client.put_credential("consulate-login", value)
    assert (created.name, created.revision) == ("consulate-login", 1)
    replaced = client.put_credential("consulate-login", _secret())
    assert replaced.revision == 2
    listing = httpx.get(
        f"{stack.base_url}/v1/credentials", headers={"authorization": f"Bearer {api_key}"}
    )
    assert [c["name"] for c in listing.json()["data"]] == ["consulate-login"]
    assert value not in listing.text
    client.delete_credential("consulate-login")
    with pytest.raises(NotFoundError):
        client.delete_credential("consulate-login")
    with pytest.raises(InvalidRequestError) as bad:
        client.put_credential("bad name!", "x")
    assert bad.value.status == 422


def test_tenants_cannot_read_each_others_credentials(stack: Stack, client: Client) -> None:
    """A credential is scoped to its tenant: another tenant's lookup finds nothing."""
    client.put_credential("shared-name", "mine")
    other = Client(stack.base_url, stack.new_key(new_tenant_name()))
    assert other.credentials().data == []
    vault = Vault.from_settings(stack.settings, store=stack.store)
    with pytest.raises(PermanentError):
        vault.get(other.me().tenant_id, "shared-name")
    assert vault.get(client.me().tenant_id, "shared-name") == "mine"
    other.close()


def _dump_database(stack: Stack) -> bytes:
    """Every row of every table of the app and DBOS databases, plus raw SQLite files."""
    chunks: list[bytes] = []
    urls = {stack.settings.app_database_url, stack.settings.dbos_database_url}
    for url in urls:
        if url.startswith("sqlite"):
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                file = path.with_name(path.name + suffix)
                if file.exists():
                    chunks.append(file.read_bytes())
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":  # every tenant's rows (row-level security)
                conn.execute(sa.text("SELECT set_config('portwright.scope', 'system', true)"))
            for table in sa.inspect(conn).get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"'))
                chunks.extend(repr(tuple(row)).encode() for row in rows)
            if engine.dialect.name == "postgresql":
                schemas = conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars()
                for schema in [s for s in schemas if s == "dbos"]:
                    for table in sa.inspect(conn).get_table_names(schema=schema):
                        query = sa.text(f'SELECT * FROM "{schema}"."{table}"')
                        chunks.extend(repr(tuple(row)).encode() for row in conn.execute(query))
        engine.dispose()
    return b"\n".join(chunks)


async def test_secret_is_used_in_a_step_and_never_in_clear(
    stack: Stack,
    client: Client,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A job decrypts its credential inside a step; afterwards no log line and no byte of
    the database holds the value in clear."""
    caplog.set_level(logging.DEBUG)
    value = _secret()
    client.put_credential("portal-password", value)
    job = client.submit("secret-user", {"url": stack.urls["echo"], "credential": "portal-password"})
    await wait_until(lambda: client.get_job(job.id).status == "succeeded", timeout=20)
    assert client.get_job(job.id).output == {"status": 200, "secret_length": len(value)}
    out, err = capfd.readouterr()
    logs = out + err + caplog.text
    assert value not in logs
    dump = _dump_database(stack)
    assert b"portal-password" in dump  # the name is stored in clear, as metadata
    assert value.encode() not in dump


def test_master_key_rotation(stack: Stack, tmp_path: Path) -> None:
    """After rotation data keys are wrapped by the new master key; the old one alone fails."""
    store = stack.store
    tenant = store.tenants.ensure(new_tenant_name("rot"))
    old = MasterKey(MasterKey.generate())
    new = MasterKey(MasterKey.generate())
    Vault(old, store=store).put(tenant.id, "pw", "hunter2")
    rotating = Vault(new, previous=(old,), store=store)
    assert rotating.get(tenant.id, "pw") == "hunter2"
    assert rotating.rotate_master(tenant.id) == 1
    assert Vault(new, store=store).get(tenant.id, "pw") == "hunter2"
    with pytest.raises(VaultCryptoError):
        Vault(old, store=store).get(tenant.id, "pw")


def test_data_key_rotation_reseals(stack: Stack) -> None:
    """A tenant's new data key re-encrypts its credentials; values are unchanged."""
    store = stack.store
    tenant = store.tenants.ensure(new_tenant_name("dk"))
    vault = Vault(MasterKey(MasterKey.generate()), store=store)
    vault.put(tenant.id, "a", "alpha")
    before = store.vault.get(tenant.id, "a")
    version, _ = vault.rotate_data_key(tenant.id)
    after = store.vault.get(tenant.id, "a")
    assert before is not None
    assert after is not None
    assert (before.key_version, after.key_version) == (version - 1, version)
    assert before.ciphertext != after.ciphertext
    assert Vault(vault.master, store=store).get(tenant.id, "a") == "alpha"


def test_moved_ciphertext_does_not_decrypt(stack: Stack) -> None:
    """A ciphertext copied to another credential name fails authentication."""
    store = stack.store
    tenant = store.tenants.ensure(new_tenant_name("mv"))
    vault = Vault(MasterKey(MasterKey.generate()), store=store)
    row = vault.put(tenant.id, "one", "first")
    store.vault.put(tenant.id, "two", key_version=row.key_version, ciphertext=row.ciphertext)
    with pytest.raises(VaultCryptoError):
        vault.get(tenant.id, "two")


def test_sealed_blobs_open_only_for_their_tenant_and_context(stack: Stack) -> None:
    """A blob sealed for (tenant, context) opens there, also after the tenant's data key
    rotates; under another context or tenant, tampered, or not sealed at all, it does not."""
    store = stack.store
    tenant = store.tenants.ensure(new_tenant_name("blob")).id
    other = store.tenants.ensure(new_tenant_name("blob")).id
    vault = Vault(MasterKey(MasterKey.generate()), store=store)
    sealed = vault.seal_blob(tenant, b'{"cookies": ["session=abc"]}', context="t/j/state")
    assert b"session=abc" not in sealed
    assert vault.open_blob(tenant, sealed, context="t/j/state") == b'{"cookies": ["session=abc"]}'
    vault.rotate_data_key(tenant)
    again = Vault(vault.master, store=store)  # no cached keys
    assert again.open_blob(tenant, sealed, context="t/j/state").startswith(b'{"cookies"')
    assert again.seal_blob(tenant, b"x", context="c")[8:12] != sealed[8:12]  # new key version
    for opener in (
        lambda: vault.open_blob(tenant, sealed, context="t/other/state"),
        lambda: vault.open_blob(other, sealed, context="t/j/state"),
        lambda: vault.open_blob(tenant, sealed[:-1] + bytes([sealed[-1] ^ 1]), context="t/j/state"),
        lambda: vault.open_blob(tenant, b'{"cookies": []}', context="t/j/state"),
    ):
        with pytest.raises(VaultCryptoError):
            opener()
