"""Resources by configuration: where the file is found, what wins, how bad values are
refused (naming the setting, never echoing a secret), and what the settings build."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from portwright.observability import redact
from portwright.resources import (
    CreateTaskSolver,
    IdentityRouter,
    identity_from,
    proxy_pool_from,
    solver_chain_from,
)
from portwright.sandbox import SandboxWorld, captcha, proxies
from portwright.sandbox.config import world_config
from portwright.sdk import ChallengeError
from portwright.settings import Settings, SettingsError, config_path, load_settings

PROXIES = """
[[proxies.lists]]
name = "office"
tier = "datacenter"
country = "de"
username = "alice"
password = "env:TEST_PROXY_SECRET"
proxies = [
  "http://10.0.0.1:3128",
  { server = "http://10.0.0.2:3128", country = "FR", name = "paris" },
]

[[proxies.gateways]]
name = "resi"
server = "http://gw.example.test:7777"
username = "cust"
password = "file:{secret}"
countries = ["GB", "us"]
slots = 2
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty portwright.toml named by PORTWRIGHT_CONFIG; no PORTWRIGHT_* from outside."""
    for name in list(os.environ):
        if name.startswith("PORTWRIGHT_"):
            monkeypatch.delenv(name)
    path = tmp_path / "portwright.toml"
    path.write_text("")
    monkeypatch.setenv("PORTWRIGHT_CONFIG", str(path))
    return path


def _problems(path: Path, text: str, **values: object) -> str:
    path.write_text(text)
    with pytest.raises(SettingsError) as refused:
        load_settings(**values)
    return str(refused.value)


def test_the_file_is_found_by_the_documented_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PORTWRIGHT_CONFIG names the file (it must exist; `none` reads none), else
    ./portwright.toml when there is one, else no file."""
    cwd = tmp_path / "here"
    cwd.mkdir()
    assert config_path({}, cwd) is None
    (cwd / "portwright.toml").write_text("")
    assert config_path({}, cwd) == cwd / "portwright.toml"
    other = tmp_path / "other.toml"
    other.write_text("")
    assert config_path({"PORTWRIGHT_CONFIG": str(other)}, cwd) == other
    assert config_path({"PORTWRIGHT_CONFIG": "none"}, cwd) is None
    with pytest.raises(SettingsError, match="PORTWRIGHT_CONFIG: no such file"):
        config_path({"PORTWRIGHT_CONFIG": str(tmp_path / "missing.toml")}, cwd)
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("PORTWRIGHT_CONFIG", raising=False)
    (cwd / "portwright.toml").write_text('log_level = "DEBUG"\n')
    assert Settings().log_level == "DEBUG"


def test_arguments_beat_environment_beat_the_file(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A setting in the file is overridden by PORTWRIGHT_* (nested with __), and both by
    arguments; sections merge key by key."""
    config.write_text(
        'log_level = "DEBUG"\nworker_concurrency = 4\n[captcha.budget]\nlimit = 10\nperiod_s = 60\n'
    )
    monkeypatch.setenv("PORTWRIGHT_WORKER_CONCURRENCY", "8")
    monkeypatch.setenv("PORTWRIGHT_CAPTCHA__BUDGET__LIMIT", "5")
    settings = load_settings(log_level="ERROR")
    assert settings.log_level == "ERROR"
    assert settings.worker_concurrency == 8
    assert settings.captcha.budget is not None
    assert (settings.captcha.budget.limit, settings.captcha.budget.period_s) == (5, 60)


def test_proxy_lists_and_gateways_with_credentials_by_reference(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """env: and file: references resolve at load; entries inherit the list's tier, country and
    credentials; the pool offers every list proxy and each gateway slot per country."""
    secret = tmp_path / "gw-secret"
    secret.write_text("gw-pass\n")
    config.write_text(PROXIES.replace("{secret}", str(secret)))
    monkeypatch.setenv("TEST_PROXY_SECRET", "list-pass")
    settings = load_settings()
    assert "list-pass" not in repr(settings)
    pool = proxy_pool_from(settings.proxies)
    assert pool is not None
    offered = {p.name: p for p in pool.offered()}
    assert offered["office-1"].country == "DE"
    assert offered["office-1"].url == "http://alice:list-pass@10.0.0.1:3128"
    assert (offered["paris"].country, offered["paris"].tier) == ("FR", "datacenter")
    gateway = [p for p in offered.values() if p.provider == "resi"]
    assert len(gateway) == 4  # 2 countries x 2 slots
    assert {p.password for p in gateway} == {"gw-pass"}
    assert {p.country for p in gateway} == {"GB", "US"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[proxies.lists]]\nname = "a"\nproxies = ["http://u:p@10.0.0.1:3128"]\n',
         "proxies.lists.0.proxies.0.server: proxy server must not carry credentials"),
        ('[[proxies.lists]]\nname = "a"\nproxies = ["http://10.0.0.1:99999"]\n',
         "proxies.lists.0.proxies.0.server: proxy server is not a valid URL"),
        ('[[proxies.lists]]\nname = "a"\ntier = "gold"\nproxies = ["http://10.0.0.1:1"]\n',
         "unknown tier 'gold'"),
        ('[[proxies.lists]]\nname = "a"\nproxies = []\n', "proxies.lists.0.proxies"),
        ('[[proxies.lists]]\nname = "a b"\nproxies = ["http://h:1"]\n', "proxies.lists.0.name"),
        ('[[captcha.providers]]\nname = "x"\nstyle = "magic"\nurl = "http://h"\napi_key = "k"\n',
         "captcha.providers.0.style"),
        ('[[captcha.providers]]\nname = "x"\nstyle = "2captcha"\nurl = "javascript:alert(1)"\n'
         'api_key = "k"\n', "captcha.providers.0.url"),
        ('[[captcha.providers]]\nname = "x"\nstyle = "2captcha"\nurl = "http://h"\n'
         'api_key = "env:TEST_NOT_SET_ANYWHERE"\n',
         "captcha.providers.0.api_key: environment variable TEST_NOT_SET_ANYWHERE is not set"),
        ('[[browsers.providers]]\nname = "r"\nkind = "cdp"\nurl = "ws://h:9222"\nconcurrency = 0\n',
         "browsers.providers.0.concurrency"),
        ('[[browsers.providers]]\nname = "r"\nkind = "cdp"\n', "a cdp provider needs url"),
        ('[identities]\nadapters = { consulate = "nowhere" }\n', "unknown identity pool 'nowhere'"),
        ('proxys = 1\n', "unknown setting(s) proxys"),
        ('[captcha\n', "not valid TOML"),
    ],
    ids=["url-credentials", "port-range", "tier", "empty-list", "name", "style", "scheme",
         "env-ref", "concurrency", "cdp-url", "pool", "unknown-key", "toml"],
)  # fmt: skip
def test_bad_values_are_refused_naming_the_setting(config: Path, text: str, expected: str) -> None:
    """Each hostile or mistaken value stops the load with the setting's path and the problem."""
    assert expected in _problems(config, text)


def test_a_refusal_never_echoes_a_secret(config: Path) -> None:
    """An over-long key or a bad URL with credentials is described, not repeated."""
    problems = _problems(
        config,
        '[[captcha.providers]]\nname = "x"\nstyle = "2captcha"\nurl = "http://h"\n'
        f'api_key = "{"S" * 5000}"\n'
        '[[proxies.lists]]\nname = "a"\nproxies = ["http://user:hunter2@h:1"]\n',
    )
    assert "SSSS" not in problems
    assert "hunter2" not in problems


def test_credentials_are_masked_in_logs(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings' new secrets stay masked wherever they reach a log line: SecretStr
    values, password/api_key/token keys, proxy URLs with credentials, tokens in a CDP URL."""
    config.write_text(
        '[[browsers.providers]]\nname = "r"\nkind = "cdp"\nurl = "wss://b.test/cdp?token={token}"\n'
        'token = "env:TEST_CDP_TOKEN"\nheaders = { Authorization = "Bearer abc.def" }\n'
    )
    monkeypatch.setenv("TEST_CDP_TOKEN", "tok-123456")
    settings = load_settings()
    provider = settings.browsers.providers[0]
    event = {
        "event": f"connecting to {provider.endpoint()} via http://bob:pa55@10.0.0.1:3128",
        "browsers": settings.browsers.model_dump(),
        "password": "pa55",
        "api_key": "k-1",
        "token": "tok-123456",
    }
    line = json.dumps(redact(None, "info", event), default=str)
    for secret in ("tok-123456", "pa55", "abc.def", "k-1"):
        assert secret not in line


def test_the_sandbox_world_is_one_configuration() -> None:
    """The world's proxies and both captcha services become ordinary settings: a pool of its
    proxies by tier and country, and a chain 2captcha style then JSON task style."""
    specs = [
        *captcha.specs(),
        *captcha.task_specs(),
        proxies.proxy_spec("p-1", "datacenter", "US"),
        proxies.proxy_spec("p-2", "residential", "GB", username="u", password="p"),
    ]
    with SandboxWorld(specs, seed=3) as world:
        settings = Settings.model_validate(world_config(world))
    pool = proxy_pool_from(settings.proxies)
    assert pool is not None
    assert {(p.name, p.tier, p.country) for p in pool.offered()} == {
        ("p-1", "datacenter", "US"), ("p-2", "residential", "GB"),
    }  # fmt: skip
    chain = solver_chain_from(settings, None)
    assert chain is not None
    assert list(chain.solvers) == ["captcha-solver", "captcha-tasks"]
    assert isinstance(chain.solvers["captcha-tasks"], CreateTaskSolver)


def test_identities_route_each_adapter_to_its_pool(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed adapters get a sticky proxy of their pool's tier and country, others connect
    directly; rotation burns the job's proxy and moves on until the selection is spent."""
    config.write_text(
        '[[proxies.lists]]\nname = "l"\nproxies = [\n'
        '  { server = "http://10.0.0.1:1", country = "DE" },\n'
        '  { server = "http://10.0.0.2:1", country = "DE" },\n'
        '  { server = "http://10.0.0.3:1", country = "FR" },\n]\n'
        '[identities]\nadapters = { consulate = "de", scrape = "proxies" }\n'
        '[identities.pools.de]\ncountry = "DE"\n'
    )
    settings = load_settings()
    router = identity_from(settings, proxy_pool_from(settings.proxies))
    assert router.proxy_for("j1", "jobboard") is None
    first = router.proxy_for("j1", "consulate")
    assert first in ("http://10.0.0.1:1", "http://10.0.0.2:1")
    assert router.proxy_for("j1", "consulate") == first  # sticky
    assert router.rotate("j1", "consulate", "blocked") is True
    second = router.proxy_for("j1", "consulate")
    assert second not in (first, "http://10.0.0.3:1")
    assert router.rotate("j1", "consulate", "blocked") is False  # DE spent: escalate
    assert router.proxy_for("j1", "consulate") == second  # fails closed, never direct
    assert router.rotate("j1", "jobboard", "blocked") is False


def test_a_pool_named_without_proxies_is_refused(config: Path) -> None:
    """Routing an adapter to proxies when none are configured is an error at start."""
    config.write_text('[identities]\ndefault = "proxies"\n')
    settings = load_settings()
    with pytest.raises(SettingsError, match="needs proxies, and none are configured"):
        identity_from(settings, None)
    assert isinstance(
        identity_from(load_settings(identities={"default": "direct"}), None), IdentityRouter
    )


async def test_the_json_task_client_against_its_sandbox_stand_in() -> None:
    """createTask/getTaskResult solves a challenge; a bad key is the provider's failure
    (the breaker counts it), an unsolvable one is not; getBalance reads the balance."""
    with SandboxWorld(captcha.task_specs({"solve_time_s": 0.05}), seed=4) as world:
        url = world.url("captcha-tasks")
        challenge = captcha.new_challenge(world.context("captcha-tasks"), key="t")
        solver = CreateTaskSolver(url, "sandbox-key", poll_s=0.02, timeout_s=5)
        answer = await solver.solve(sitekey=challenge.sitekey, url="http://portal/login")
        assert captcha.verify(world.context("captcha-tasks"), challenge.id, answer)
        assert await solver.balance() == pytest.approx(10.0 - 0.003)
        with pytest.raises(ChallengeError) as refused:
            await CreateTaskSolver(url, "wrong", poll_s=0.02).solve(
                sitekey="sbx-1", url="http://p/"
            )
        assert refused.value.details["provider_down"] is True
        assert refused.value.details["code"] == "ERROR_KEY_DOES_NOT_EXIST"
        with pytest.raises(ChallengeError) as unsolvable:
            await solver.solve(sitekey="foreign", url="http://p/")
        assert unsolvable.value.details["provider_down"] is False
        dead = CreateTaskSolver("http://127.0.0.1:9", "k", poll_s=0.02)
        with pytest.raises(ChallengeError) as down:
            await dead.balance()
        assert down.value.details["provider_down"] is True


def test_secret_str_settings_keep_their_value_for_the_builders(config: Path) -> None:
    """A clear-text credential is a SecretStr like a referenced one."""
    config.write_text(
        '[[captcha.providers]]\nname = "x"\nstyle = "createtask"\nurl = "https://s.test"\n'
        'api_key = "clear"\n'
    )
    provider = load_settings().captcha.providers[0]
    assert isinstance(provider.api_key, SecretStr)
    assert provider.api_key.get_secret_value() == "clear"


def test_up_uses_the_worlds_resources_only_where_the_settings_name_none(tmp_path: Path) -> None:
    """`portwright up` over a world: the user's own proxy list stays, the world's solvers
    fill the empty captcha chain, and the result is validated like any settings."""
    from portwright.sandbox.plugin import settings_for as sandbox_settings

    specs = [*captcha.specs(), *captcha.task_specs(), proxies.proxy_spec("p-1", "mobile", "US")]
    own = Settings(
        data_dir=tmp_path,
        proxies={"lists": [{"name": "mine", "proxies": ["http://10.9.9.9:3128"]}]},
    )
    with SandboxWorld(specs, seed=5) as world:
        merged = sandbox_settings(own, world)
        bare = sandbox_settings(Settings(data_dir=tmp_path), world)
    assert [p.name for p in merged.proxies.lists] == ["mine"]
    assert [p.name for p in merged.captcha_providers()] == ["captcha-solver", "captcha-tasks"]
    assert [e.name for e in bare.proxies.lists[0].proxies] == ["p-1"]


def test_the_world_written_as_a_file_loads_as_the_same_resources(
    config: Path, tmp_path: Path
) -> None:
    """`portwright sandbox --write-config` output is a portwright.toml like any other: it
    loads, and builds the world's proxies and solver chain, its ports on the allowlist, and
    points customers' email and SMS at its SMTP server and inbox."""
    from portwright.sandbox import inbox, mail
    from portwright.sandbox.config import world_toml

    specs = [*captcha.specs(), *captcha.task_specs(), proxies.proxy_spec("p-1", "mobile", "US"),
             *inbox.specs(), *mail.specs()]  # fmt: skip
    with SandboxWorld(specs, seed=6) as world:
        config.write_text(world_toml(world))
        settings = load_settings()
        expected = {url.split("://", 1)[-1] for url in world.urls().values()}
        assert settings.smtp_url == world.url("smtp")
        assert settings.sms_url == world.url("inbox") + "/sms"
    assert set(settings.url_allowlist) == expected
    pool = proxy_pool_from(settings.proxies)
    assert pool is not None
    assert [(p.name, p.tier, p.country) for p in pool.offered()] == [("p-1", "mobile", "US")]
    chain = solver_chain_from(settings, None)
    assert chain is not None
    assert list(chain.solvers) == ["captcha-solver", "captcha-tasks"]
