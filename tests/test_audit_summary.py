"""The dependency audit's summary: a found vulnerability fails CI; an unreachable service is
said out loud instead of passing as a clean audit."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "audit_summary.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_summary", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_and_is_named_with_its_fix() -> None:
    report = {
        "dependencies": [
            {
                "name": "jinja2",
                "version": "2.10",
                "vulns": [{"id": "GHSA-462w-v97r-4m45", "fix_versions": ["2.10.1"]}],
            },
            {"name": "httpx", "version": "0.28.1", "vulns": []},
        ]
    }
    message, status = _module().summarize(report)
    assert status == 1
    assert "jinja2 2.10: GHSA-462w-v97r-4m45 (fixed in 2.10.1)" in message


def test_a_report_where_nothing_was_audited_says_so_instead_of_passing_as_clean() -> None:
    report = {
        "dependencies": [
            {"name": "alembic", "skip_reason": "Dependency not found on PyPI"},
            {"name": "httpx", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    message, status = _module().summarize(report)
    assert status == 0
    assert "nothing was audited" in message
    assert "none of 2 packages" in message


def test_a_clean_audit_counts_what_it_looked_up() -> None:
    report = {
        "dependencies": [
            {"name": "httpx", "version": "0.28.1", "vulns": []},
            {"name": "alembic", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    message, status = _module().summarize(report)
    assert (status, message) == (
        0,
        "audit: 1 packages audited, 1 not looked up, no known vulnerabilities",
    )
