"""`portwright new adapter NAME`: a package for a new portal's adapter, ready to test.

It writes `pyproject.toml` (with the `portwright.adapters` entry point, `NAME@1`), the
adapter (input model, machine, selectors, a read-only step, `run`, `probe`) and a test
that passes as generated: the step on a `FakeStepContext`, `run` through
`check_determinism`. Nothing is overwritten: an existing directory is an error.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "scaffold_adapter"]

NAME = re.compile(r"^[a-z][a-z0-9-]{1,39}$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "portwright-adapter-{name}"
version = "0.1.0"
description = "A Portwright adapter for the {name} portal."
requires-python = ">=3.11"
dependencies = ["portwright"]

# `portwright up` and `portwright worker` register every class of this group; the key
# carries the version (`name@version`), which must match the class's `version`.
[project.entry-points."portwright.adapters"]
"{name}@1" = "{package}.adapter:{cls}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""

ADAPTER = '''\
"""The {name} portal's adapter: one read-only step that reads a page, and `run`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from portwright.sdk import Adapter, Job, PermanentError, StepContext, linear_machine


class {cls}Input(BaseModel):
    portal_url: str = Field(description="the portal's base URL")
    item: str = Field(min_length=1, max_length=200)


async def read_item(sc: StepContext, portal_url: str, item: str) -> str:
    """Read the item's status from its page (a missing selector raises PageChangedError)."""
    response = await sc.http.get(f"{{portal_url}}/items/{{item}}")
    if response.status_code in (404, 410):
        raise PermanentError(f"no item {{item!r}} on the portal")
    return sc.page(response).value("status")


class {cls}(Adapter[{cls}Input]):
    name: ClassVar[str] = "{name}"
    version: ClassVar[str] = "1"
    input_model = {cls}Input
    machine = linear_machine("{name}", ["READING"])
    selectors: ClassVar[Mapping[str, str]] = {{"status": "span.status::text"}}
    # Steps that only read: a shadow version runs its own beside this one, writes refused.
    read_only_steps: ClassVar[Mapping[str, Any]] = {{"read_item": read_item}}

    async def probe(self, sc: StepContext, data: {cls}Input) -> Any:
        """The portal's synthetic probe: the read-only read on a sample input."""
        return await read_item(sc, data.portal_url, data.item)

    async def run(self, job: Job[{cls}Input]) -> Mapping[str, Any]:
        await job.transition("QUEUED")
        await job.transition("READING")
        status = await job.step("read_item", read_item, job.input.portal_url, job.input.item)
        return {{"item": job.input.item, "status": status}}
'''

TEST = '''\
"""The adapter's step on a fake step context, and `run` checked for determinism."""

from __future__ import annotations

import httpx

from portwright.sdk import PageChangedError, PermanentError
from portwright.testing import FakeStepContext, check_determinism
from {package}.adapter import {cls}, read_item

URL = "https://{name}.example"


async def test_read_item_reads_the_status() -> None:
    routes = {{f"{{URL}}/items/a1": '<span class="status">shipped</span>'}}
    async with FakeStepContext(selectors={cls}.selectors, routes=routes) as sc:
        assert await read_item(sc, URL, "a1") == "shipped"
    assert sc.record.requests == [("GET", f"{{URL}}/items/a1", 200)]


async def test_read_item_on_a_changed_or_missing_page() -> None:
    cases = [("<p>new layout</p>", PageChangedError), (httpx.Response(404), PermanentError)]
    for answer, error in cases:
        routes = {{f"{{URL}}/items/a1": answer}}
        async with FakeStepContext(selectors={cls}.selectors, routes=routes) as sc:
            try:
                await read_item(sc, URL, "a1")
            except error:
                continue
        raise AssertionError(f"{{answer!r}} should raise {{error.__name__}}")


async def test_run_is_deterministic() -> None:
    trace = await check_determinism(
        {cls}, {{"portal_url": URL, "item": "a1"}}, steps={{"read_item": "shipped"}}
    )
    assert ("step", "read_item") in [call[:2] for call in trace]
'''

README = """\
# portwright-adapter-{name}

A Portwright adapter for the {name} portal (`src/{package}/adapter.py`).

    pip install -e .          # registers it: entry point `{name}@1` in pyproject.toml
    python -m pytest          # the step on a FakeStepContext, `run` checked for determinism

See Portwright's docs/adapters.md: credentials, status codes, versions and rollouts.
"""


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-")) + "Adapter"


def scaffold_adapter(name: str, directory: Path) -> list[Path]:
    """Write a new adapter package for `name` into `directory` (which must not exist);
    the files written. ValueError for a bad name or an existing directory."""
    if not NAME.match(name):
        raise ValueError(
            f"name: {name!r} must be 2-40 lowercase letters, digits and '-', starting with a "
            "letter (e.g. 'city-permits')"
        )
    if directory.exists():
        raise ValueError(f"directory: {directory} already exists; nothing was written")
    package = name.replace("-", "_") + "_adapter"
    values = {"name": name, "package": package, "cls": _class_name(name)}
    files = {
        directory / "pyproject.toml": PYPROJECT.format(**values),
        directory / "README.md": README.format(**values),
        directory / "src" / package / "__init__.py": f'"""The {name} adapter."""\n',
        directory / "src" / package / "adapter.py": ADAPTER.format(**values),
        directory / "tests" / f"test_{package}.py": TEST.format(**values),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


def register(sub: Any) -> None:
    new = sub.add_parser("new", help="scaffold a new package: new adapter NAME")
    kinds = new.add_subparsers(dest="new_command", metavar="KIND", required=True)
    p = kinds.add_parser("adapter", help="a package with an adapter, its entry point and tests")
    p.add_argument("name", help="the adapter's name, e.g. city-permits")
    p.add_argument("--dir", type=Path, default=None, help="where (default: ./NAME)")
    p.set_defaults(func=_new_adapter)


def _new_adapter(args: argparse.Namespace) -> int:
    directory = args.dir or Path(args.name)
    try:
        written = scaffold_adapter(args.name, directory)
    except ValueError as exc:
        print(f"portwright new adapter: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    print(f"next: cd {directory} && pip install -e . && python -m pytest")
    return 0
