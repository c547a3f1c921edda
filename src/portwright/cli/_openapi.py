"""`portwright openapi`: print the public API's OpenAPI document (what `/openapi.json`
serves), for client generators.

The document is built from a runtime on a throwaway SQLite database in a temporary
directory (no workers, nothing listening), so it needs no configuration and depends
only on the installed code: the gateway's routes and the installed apps' routers.
Written with sorted keys and a trailing newline, so two runs on the same code give the
same bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["document", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("openapi", help="print the API's OpenAPI document (for client generators)")
    p.add_argument("--out", default="-", help="write it to this file instead of standard output")
    p.set_defaults(func=_openapi)


def document() -> dict[str, Any]:
    """The public API's OpenAPI document, from a throwaway runtime."""
    from pydantic import SecretStr

    from portwright.adapters import AdapterRegistry
    from portwright.gateway import create_app
    from portwright.orchestrator import JobService, Runtime
    from portwright.settings import Settings

    with tempfile.TemporaryDirectory(prefix="portwright-openapi-") as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=f"sqlite:///{Path(tmp) / 'openapi.sqlite'}",
            worker_id="openapi",
            master_key=SecretStr("openapi-document-only-" + "x" * 32),
            log_json=False,
        )
        runtime = Runtime(settings, AdapterRegistry(), run_workers=False)
        with contextlib.redirect_stdout(sys.stderr):  # its log lines are not the document
            runtime.start()
        try:
            return create_app(JobService(runtime), settings).openapi()
        finally:
            with contextlib.redirect_stdout(sys.stderr):
                runtime.stop()


def _openapi(args: argparse.Namespace) -> int:
    text = json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0
