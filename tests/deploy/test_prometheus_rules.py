"""deploy/prometheus: the rules load (`promtool check rules`), behave as their unit tests say
(`promtool test rules`, rules_test.yml), and every metric they read is one a real gateway
or worker serves at /metrics, with the labels the rules select on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, Stack

RULES = DEPLOY / "prometheus" / "rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "rules_test.yml"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
# Series Prometheus itself makes (not Portwright's): `up` per scrape target.
PROMETHEUS_OWN = {"up"}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install Debian's `prometheus` package (./run test does)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=RULES.parent, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def _exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _recorded() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def _series_names(expr: str) -> set[str]:
    """Metric names an expression reads (recording-rule names excluded)."""
    names = set(re.findall(r"(?<![:\w])(portwright_[a-z_]+|up)(?=[\s{\[)/]|$)", expr))
    return names - PROMETHEUS_OWN


def _families(exposition: str) -> dict[str, str]:
    """{family name: type} from the `# TYPE` lines of a Prometheus text exposition."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE))


def _exported(*expositions: str) -> set[str]:
    names: set[str] = set()
    for text in expositions:
        for family, kind in _families(text).items():
            base = family.removesuffix("_total") if kind == "counter" else family
            names.update(base + suffix for suffix in SUFFIXES.get(kind, ("",)))
    return names


def test_promtool_check_rules() -> None:
    checked = _run("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    tested = _run("test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_unit_tests_cover_every_alert() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    cases = yaml.safe_load(RULES_TEST.read_text())["tests"]
    firing = {
        case["alertname"]
        for test in cases
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - firing == set(), "alerts no unit test shows firing"


def test_every_metric_the_rules_read_is_exported(stack: Stack) -> None:
    # A webhook for a source nobody configured still goes through the hook route: its
    # template is what the webhook-ack SLO selects on.
    hook = httpx.post(f"{stack.gateway}/v1/hooks/nosuch", content=b"{}", timeout=10)
    assert hook.status_code in (400, 401, 404), hook.text
    gateway = httpx.get(f"{stack.gateway}/metrics", timeout=10)
    worker = httpx.get(stack.worker_metrics, timeout=10)
    assert gateway.status_code == 200
    assert worker.status_code == 200
    exported = _exported(gateway.text, worker.text)
    used = set().union(*(_series_names(e) for e in _exprs()))
    assert len(used) >= 15, used  # the parser found the rules' metrics
    assert used - exported == set(), "rules read metrics nobody exports"
    # The worker's own registry has the in-process families the per-instance alerts use.
    worker_names = _exported(worker.text)
    for name in ("portwright_proxy_pool_usable", "portwright_captcha_budget_spent",
                 "portwright_captchas_total"):  # fmt: skip
        assert name in worker_names
    # The labels the rules select on are the ones served.
    assert 'route="/v1/hooks/{source}"' in gateway.text
    assert 'method="POST"' in gateway.text
    for recorded in _recorded():
        assert ":" in recorded
        assert recorded not in exported


def test_the_parser_sees_a_misspelt_metric() -> None:
    """The name check would fail on a rule reading a metric nobody exports."""
    assert _series_names('max by (queue) (portwright_queue_dept{x="1"}) > 3') == {
        "portwright_queue_dept"
    }
    assert "portwright_queue_dept" not in _exported("# TYPE portwright_queue_depth gauge\n")


def test_rule_files_are_yaml_the_tests_name(tmp_path: Path) -> None:
    """promtool reports a broken rule: the check is not vacuous."""
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(\n")
    checked = _run("check", "rules", str(broken))
    assert checked.returncode != 0
