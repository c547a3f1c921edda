"""A pytest plugin: record a portal's pages once, replay them offline.

Enable it in your `conftest.py` with `pytest_plugins = ["portwright.testing.cassettes"]`.
The `cassette` fixture is a `portwright.testing.Cassette` stored next to the test module in
`cassettes/<module>.<test>.json`: the first run (no file yet, or `--record-cassettes`)
records from the real portal, every later run replays from the file without connecting::

    async def test_read_item(cassette):
        async with FakeStepContext(selectors=..., transport=cassette.transport) as sc:
            assert await read_item(sc, PORTAL, "a1") == "shipped"
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwright.testing._cassette import Cassette

__all__ = ["cassette", "pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-cassettes",
        action="store_true",
        help="record every cassette again from the real portal (portwright.testing)",
    )


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    """This test's cassette: recorded on the first run, replayed offline afterwards."""
    module = Path(str(request.node.path))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = module.parent / "cassettes" / f"{module.stem}.{name}.json"
    record = bool(request.config.getoption("--record-cassettes")) or not path.exists()
    recorded = Cassette(path, record=record)
    yield recorded
    if request.node.stash.get(_FAILED, False):
        return  # a failed recording is not kept
    recorded.save()


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if getattr(report, "when", "") == "call" and getattr(report, "failed", False):
        item.stash[_FAILED] = True
    return report
