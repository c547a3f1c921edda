"""Summarize a `pip-audit -f json` report: one line, and the exit status CI acts on.

pip-audit exits 0 when a package could not be looked up (the vulnerability service did not
know it, or could not be reached), so a run that audited nothing would pass silently. This
reads the report and says how many packages were really audited:

- any known vulnerability  -> exit 1, each one named with its fix versions;
- nothing audited at all   -> exit 0 with a warning line saying so (the service is
  unreachable from this machine: a network limit, not a clean bill of health);
- otherwise                -> exit 0, "N audited, M not looked up, no known vulnerabilities".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def summarize(report: dict[str, Any]) -> tuple[str, int]:
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    audited = [d for d in deps if "skip_reason" not in d]
    found = [(d, v) for d in audited for v in d.get("vulns", [])]
    if found:
        lines = [f"audit: {len(found)} known vulnerabilities in {len(audited)} audited packages:"]
        for dep, vuln in found:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
            lines.append(
                f"  {dep['name']} {dep.get('version', '?')}: {vuln['id']} (fixed in {fixes})"
            )
        return "\n".join(lines), 1
    if deps and not audited:
        return (
            f"audit: warning: the vulnerability service answered for none of {len(deps)} "
            "packages (unreachable from this machine); nothing was audited",
            0,
        )
    return (
        f"audit: {len(audited)} packages audited, {len(skipped)} not looked up, "
        "no known vulnerabilities",
        0,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: audit_summary.py REPORT.json", file=sys.stderr)
        return 2
    message, status = summarize(json.loads(Path(argv[1]).read_text()))
    print(message, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
