"""`portwright openapi` prints the API's OpenAPI document, the same bytes each run, and the
TypeScript client's committed copy (`clients/node/openapi.json`, its types' source) is it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_openapi_command_prints_the_served_document_and_the_node_client_is_current(
    tmp_path: Path,
) -> None:
    """The command's document lists the API's routes with the package version; it is
    written with sorted keys, so the Node client's copy must equal it byte for byte (run
    `npm run generate` in clients/node after changing a route)."""
    from portwright import __version__

    out = tmp_path / "openapi.json"
    done = subprocess.run(
        [sys.executable, "-m", "portwright.cli", "openapi", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the runtime's log lines go to stderr, not into the document
    text = out.read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["info"]["version"] == __version__
    assert {"/v1/jobs", "/v1/escalations", "/v1/portals/{name}/cooldown"} <= set(document["paths"])
    committed = (ROOT / "clients" / "node" / "openapi.json").read_text(encoding="utf-8")
    assert committed == text, "clients/node is stale: run `npm run generate` there"
    package = json.loads((ROOT / "clients" / "node" / "package.json").read_text())
    assert package["version"] == __version__
