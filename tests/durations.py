"""Seconds per test file, from a run's JUnit XML, into tests/durations.json (the order the
suite's files run in: longest first, see tests/conftest.py).

    python -m tests.durations .venv/pytest-junit.xml   # the file `./run test` writes

Run it after a full run when files were added or became much slower or faster; a stale table
only costs wall time (a long file started late), never a test.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = Path(__file__).with_name("durations.json")


def file_of(classname: str) -> str | None:
    """`tests.gateway.test_openapi` (or `….TestClass`) → `tests/gateway/test_openapi.py`."""
    parts = classname.split(".")
    while parts:
        path = "/".join(parts) + ".py"
        if (ROOT / path).is_file():
            return path
        parts.pop()
    return None


def per_file(report: Path) -> dict[str, float]:
    """Each file's tests' setup + call + teardown seconds (JUnit's `time`), summed."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):
        path = file_of(case.get("classname", ""))
        if path is not None:
            seconds[path] += float(case.get("time", "0") or 0)
    return {path: round(s, 1) for path, s in sorted(seconds.items(), key=lambda kv: -kv[1])}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    table = per_file(Path(argv[0]))
    if not table:
        print(f"no test cases in {argv[0]}", file=sys.stderr)
        return 1
    TABLE.write_text(json.dumps(table, indent=1) + "\n")
    print(f"{TABLE.relative_to(ROOT)}: {len(table)} files, {sum(table.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
